"""Invalidations owed to Redis: queued when they fail, replayed in order once it answers.

A read or write waits for the replay first, so that no caller is served an entry an earlier
invalidation removed; a background task replays as soon as Redis answers again, so that an
idle process does not hold the invalidations back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ...errors import BackendError
from ...events import CacheEvent
from .faults import CircuitBreaker, Invalidation, PendingInvalidations, Replayed

__all__ = ["Replays"]

logger = logging.getLogger("fastapi_cachekit.redis")

_FIRST_REPLAY_DELAY = 0.01


class Replays:
    """The queue of owed invalidations (`pending`), and who replays it when."""

    def __init__(
        self, limit: int, clear: Callable[[], Awaitable[int]], breaker: CircuitBreaker
    ) -> None:
        self.pending = PendingInvalidations(limit, self._replay_soon)
        self._clear = clear
        self._breaker = breaker
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._answered = asyncio.Event()
        self._on_replayed: Replayed | None = None
        self.emit: Callable[[CacheEvent], None] | None = None
        """Told a "replay" event (how many were sent) after each replay that sent some."""

    def on_replay(self, replayed: Replayed) -> None:
        """See `RedisBackend.on_replay`."""
        self._on_replayed = replayed

    def answered(self) -> None:
        """Redis answered on another connection: replay now, not after the back-off."""
        self._breaker.probe_now()
        self._answered.set()

    async def run(self, invalidation: Invalidation, perform: Callable[[], Awaitable[int]]) -> int:
        """Perform an invalidation after the owed ones; when it fails, queue it and raise.

        Any failure is queued, not only an unreachable Redis: a slot moving between cluster
        nodes, a script refused mid-failover or a timeout all leave the invalidation owed
        (bad input never gets this far: the service validates it first).
        """
        try:
            await self.replay()
            return await perform()
        except BackendError:
            self.pending.add(invalidation, perform)
            raise

    async def clear(self) -> int:
        """Clear everything after the owed invalidations (a failed clear is owed in turn)."""
        try:
            await self.replay()
            return await self._clear()
        except BackendError:
            self.pending.add_clear(self._clear)
            raise

    async def replay(self) -> None:
        """Send the queued invalidations, in order, before anything else is served."""
        if not len(self.pending):
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a lock serves the one loop it first waited on
            self._loop, self._lock = loop, asyncio.Lock()
        async with self._lock:
            before = self.pending.replayed
            try:
                await self.pending.replay(self._clear, self._on_replayed)
            finally:  # those sent before a failure count too
                sent = self.pending.replayed - before
                if sent and self.emit is not None:
                    self.emit(CacheEvent("replay", "redis", count=sent))

    async def close(self) -> None:
        """Stop the background replay; warn about what stays owed."""
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if len(self.pending):
            logger.warning(
                "closing the Redis backend with %d invalidations never sent", len(self.pending)
            )

    def _replay_soon(self) -> None:
        """Start replaying the queue in the background (an invalidation was just queued)."""
        if self._task is None or self._task.done():
            self._answered = asyncio.Event()  # an event serves the loop it first waited on
            self._task = asyncio.get_running_loop().create_task(self._replay_when_back())

    async def _replay_when_back(self) -> None:
        """Replay the queue once Redis answers: probe when the breaker allows (or when told
        that Redis answered), backing off while it does not."""
        delay = _FIRST_REPLAY_DELAY
        while len(self.pending):
            self._answered.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._answered.wait(), max(self._breaker.wait(), delay))
            try:
                await self.replay()
            except BackendError as exc:
                logger.debug("queued invalidations not replayed yet: %s", exc)
                delay = min(delay * 2, self._breaker.max_backoff)
