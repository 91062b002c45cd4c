"""The source of truth outside the cache: one version counter per item, in files.

Every worker of the chaos app and the test process read the same directory, so a response can
be classified stale by comparing the version it carries with the versions that writes
acknowledged. Files, not Redis: the truth must survive every fault the suite injects.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

__all__ = ["VersionStore"]


class VersionStore:
    """Per-item version counters under `directory` (a bump is atomic across processes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def read(self, item: str) -> int:
        try:
            return int((self.directory / f"v-{item}").read_text())
        except FileNotFoundError:
            return 0

    def bump(self, item: str) -> int:
        """Add 1 to `item`'s version; the new version. Readers see the old or the new file,
        never a partial one (write, then rename)."""
        with open(self.directory / "versions.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            version = self.read(item) + 1
            temporary = self.directory / f"v-{item}.tmp"
            temporary.write_text(str(version))
            os.replace(temporary, self.directory / f"v-{item}")
            return version

    def hold_path(self, item: str) -> Path:
        """While this file exists, a fill of `item` stops midway (the worker-kill scenario)."""
        return self.directory / f"hold-{item}"

    def mark_holder(self, item: str, pid: int) -> None:
        """Say that worker `pid` is stopped in a fill of `item`."""
        (self.directory / f"holder-{item}-{pid}").touch()

    def holders(self, item: str) -> set[int]:
        """Pids of the workers that stopped in a fill of `item` (and clear_holders since)."""
        return {int(path.name.rsplit("-", 1)[1]) for path in self._holder_files(item)}

    def clear_holders(self, item: str) -> None:
        for path in self._holder_files(item):
            path.unlink(missing_ok=True)

    def _holder_files(self, item: str) -> list[Path]:
        return list(self.directory.glob(f"holder-{item}-*"))

    def ready_path(self, pid: int) -> Path:
        """Written by a worker once its cache answers: the server waits for these."""
        return self.directory / f"ready-{pid}"
