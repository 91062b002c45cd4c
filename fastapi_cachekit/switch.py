"""The service's off switch: its setting, and the `disabled()` blocks that interrupt it.

`BackendIO.switch` does the switching (reads miss, writes store nothing, each counted as a
bypass). Blocks of several tasks may overlap, so the setting they interrupt is kept here and
restored when the last of them ends, not when the first does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .backend_io import BackendIO

__all__ = ["OffSwitch"]


class OffSwitch:
    """The cache's setting (`enabled`), and blocks that turn it off for a while."""

    def __init__(self, io: BackendIO, *, enabled: bool) -> None:
        self._io = io
        self._blocks = 0  # the disabled() blocks in progress, in any task
        self._setting = enabled  # what the last block to end restores
        io.switch(enabled=enabled)

    @contextlib.contextmanager
    def off(self) -> Iterator[None]:
        """Turn the cache off for the block."""
        if not self._blocks:
            self._setting = self._io.enabled
        self._blocks += 1
        self._io.switch(enabled=False)
        try:
            yield
        finally:
            self._blocks -= 1
            if not self._blocks:
                self._io.switch(enabled=self._setting)
