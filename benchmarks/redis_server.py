"""A throwaway redis-server for the Redis sections: free loopback port, nothing on disk.

Never port 6379, never a server this run did not start; stopped by its PID on exit.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .net import HOST, free_port, wait_for_port

__all__ = ["RedisServer", "redis_server", "redis_server_missing"]

_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server started by this run."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


def redis_server_missing() -> str | None:
    """Why no server can be started here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)"
    return None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start a redis-server on a free loopback port; stop it (by PID) on exit."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(redis_server_missing())
    with tempfile.TemporaryDirectory(prefix="cachekit-bench-redis-") as directory:
        port = free_port()
        log = Path(directory) / "redis.log"
        argv = [
            binary,
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", directory,
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(log),
        ]  # fmt: skip
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            try:
                wait_for_port(port, _START_TIMEOUT, alive=lambda: process.poll() is None)
            except (RuntimeError, TimeoutError) as exc:
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"redis-server did not start: {exc}\n{tail}") from None
            yield RedisServer(port, process)
        finally:
            _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
