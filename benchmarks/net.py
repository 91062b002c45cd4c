"""Loopback helpers: free ports (never Redis' 6379) and waiting for a server to listen."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

__all__ = ["HOST", "free_port", "wait_for_port"]

HOST = "127.0.0.1"
_RESERVED = frozenset({6379})


def free_port() -> int:
    """A loopback TCP port nobody listens on now."""
    while True:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in _RESERVED:
            return port


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool] | None = None) -> None:
    """Block until something accepts connections on `port`.

    Raises TimeoutError after `timeout` seconds, RuntimeError as soon as `alive()` is False.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"the server for {HOST}:{port} exited before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")
