"""The service's background task: counter flushes and expiry sweeps, on the running loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

__all__ = ["Maintenance"]


class Maintenance:
    """Flushes counters every `flush_interval` seconds and sweeps expired entries every
    `cleanup_interval` (None: never), in a task started on first use.

    `asyncio.run` cancels the task when its loop ends: the next use, on the next loop, starts
    another one.
    """

    def __init__(
        self,
        flush: Callable[[], Awaitable[None]],
        cleanup: Callable[[], Awaitable[object]],
        *,
        flush_interval: float,
        cleanup_interval: float | None,
    ) -> None:
        self._flush = flush
        self._cleanup = cleanup
        self._flush_interval = flush_interval
        self._cleanup_interval = cleanup_interval
        self.task: asyncio.Task[None] | None = None
        """The running task; None until the first use (and again once its loop ended)."""
        self._stopped = False

    def start(self) -> None:
        """Start the task on the running loop, unless it runs or `stop` was called."""
        if self.task is None and not self._stopped:
            self.task = asyncio.get_running_loop().create_task(self._maintain())
            self.task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Cancel the task for good (a task of another loop is left to that loop)."""
        self._stopped = True
        task = self.task
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self.task is task and not self._stopped:
            self.task = None

    async def _maintain(self) -> None:
        last_cleanup = time.monotonic()
        while True:
            await asyncio.sleep(self._flush_interval)
            await self._flush()
            now = time.monotonic()
            if self._cleanup_interval and now - last_cleanup >= self._cleanup_interval:
                last_cleanup = now
                await self._cleanup()
