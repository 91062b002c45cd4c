"""The chaos app under a real uvicorn with several workers, started and stopped by process id.

uvicorn runs in its own session (process group), so stopping it stops its workers too, and a
worker that dies is replaced by uvicorn's supervisor. The server is ready when every worker has
written its ready file (its cache answered), not merely when the port accepts connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from .truth import VersionStore

__all__ = ["L1_MAX_TTL", "ChaosServer"]

ROOT = Path(__file__).resolve().parents[2]
L1_MAX_TTL = 5.0
"""Hybrid: seconds an entry lives in a worker's L1, the hard bound for a lost announcement;
longer than the stale bound, so that a lost announcement shows as a stale read beyond it."""
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0
_SETTINGS = {
    "CACHEKIT_L1_MAX_TTL_SECONDS": str(L1_MAX_TTL),
    # Probe a Redis that came back within 0.5 s, so the suite's bounds stay short.
    "CACHEKIT_BREAKER_MAX_BACKOFF_SECONDS": "0.5",
    "CACHEKIT_FILL_LOCK_TIMEOUT_SECONDS": "2",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChaosServer:
    """`uvicorn tests.chaos.app:app --workers N` on a free loopback port."""

    def __init__(
        self, *, backend: str, redis_url: str, cluster: bool, workers: int, directory: Path
    ) -> None:
        self.backend = backend
        self.workers = workers
        self.directory = directory
        self.truth = VersionStore(directory / "truth")
        self.port = _free_port()
        self._env = {
            **{name: value for name, value in os.environ.items() if "CACHEKIT_" not in name},
            **_SETTINGS,
            "CACHEKIT_BACKEND": backend,
            "CACHEKIT_REDIS_URL": redis_url,
            "CACHEKIT_REDIS_CLUSTER": "true" if cluster else "false",
            "CACHEKIT_KEY_PREFIX": f"chaos-{uuid.uuid4().hex[:8]}",
            "CHAOS_TRUTH_DIR": str(self.truth.directory),
            "PYTHONPATH": str(ROOT),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready_workers(self) -> set[int]:
        """Pids of the workers that announced they are ready (dead ones included)."""
        return {int(path.name.split("-", 1)[1]) for path in self.truth.directory.glob("ready-*")}

    def start(self) -> None:
        argv = [sys.executable, "-m", "uvicorn", "tests.chaos.app:app", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", str(self.workers)]
        argv += ["--log-level", "warning", "--timeout-graceful-shutdown", "2"]
        with open(self.directory / "uvicorn.log", "ab") as log:
            self._process = subprocess.Popen(
                argv, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.wait_for_workers(self.workers)

    def wait_for_workers(self, count: int) -> None:
        """Wait until `count` workers have announced themselves (bounded)."""
        deadline = time.monotonic() + _START_TIMEOUT
        while len(self.ready_workers()) < count:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn workers not ready in time:\n{self.log_tail()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(timeout=_STOP_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers orphaned by a SIGKILLed supervisor are still in its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def log_tail(self, size: int = 4000) -> str:
        path = self.directory / "uvicorn.log"
        return path.read_text(errors="replace")[-size:] if path.exists() else ""
