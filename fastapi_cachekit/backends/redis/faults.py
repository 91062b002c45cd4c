"""Fault handling of the Redis backend: a circuit breaker and the queue of unsent invalidations.

The breaker makes a dead Redis cheap: after a failure, calls fail at once, with no network
attempt, until a back-off has passed; then one call probes. The queue keeps the invalidations
that could not reach Redis, so that they are replayed, in order, before anything else is served
when Redis answers again. Each queued item says what it invalidates (an `Invalidation`), so that
a tier in front of Redis (the hybrid backend's memory tier) can be told, item by item, once it
has been replayed: other processes have to hear about it then, not when it failed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal, NamedTuple

from ...events import CacheEvent

__all__ = ["CircuitBreaker", "Invalidation", "PendingInvalidations", "Replay", "Replayed"]

logger = logging.getLogger("fastapi_cachekit.redis")

BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Closed: calls go through. Open: calls fail fast until `retry_at`. Half-open: one probe.

    The back-off doubles after each failed probe, from `first_backoff` up to `max_backoff`.
    `monotonic` is injectable so tests can move time by hand.
    """

    def __init__(
        self,
        max_backoff: float,
        *,
        first_backoff: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_backoff = max_backoff
        self.first_backoff = min(first_backoff, max_backoff)
        self._monotonic = monotonic
        self.state: BreakerState = "closed"
        self.backoff = 0.0
        self.retry_at = 0.0
        self.failures = 0
        """Calls that found Redis unreachable (each one a network attempt)."""
        self.rejections = 0
        """Calls refused without a network attempt while the circuit was open."""
        self.emit: Callable[[CacheEvent], None] | None = None
        """Told "breaker_open" and "breaker_closed" (the service's observers, when any)."""

    def allow(self) -> bool:
        """Whether a call may use the network now; when it may not, it counts a rejection."""
        if self.state == "closed":
            return True
        if self.state == "open" and self._monotonic() >= self.retry_at:
            self.state = "half-open"  # this caller is the probe; others keep failing fast
            return True
        self.rejections += 1
        return False

    def wait(self) -> float:
        """Seconds until the next probe may go out (0 when closed or due)."""
        return max(0.0, self.retry_at - self._monotonic()) if self.state == "open" else 0.0

    def succeeded(self) -> None:
        if self.state != "closed":
            logger.warning(
                "Redis is reachable again; cache calls resume",
                extra={"cache_outcome": "breaker_closed"},
            )
            if self.emit is not None:
                self.emit(CacheEvent("breaker_closed", "redis"))
        self.state = "closed"
        self.backoff = 0.0

    def failed(self, reason: object) -> None:
        """Record that Redis could not be reached (`reason`: the error, for the log); opens
        the circuit (or keeps it open)."""
        self.failures += 1
        if self.state == "open":
            return  # a call that started before the circuit opened: nothing new learnt
        if self.state == "closed":
            self.backoff = self.first_backoff
            logger.warning(
                "Redis is unreachable (%s); cache calls fail fast, probing again in %.2fs",
                reason,
                self.backoff,
                extra={"cache_outcome": "breaker_open"},
            )
            if self.emit is not None:
                self.emit(CacheEvent("breaker_open", "redis"))
        else:
            self.backoff = min(self.backoff * 2, self.max_backoff)
        self.state = "open"
        self.retry_at = self._monotonic() + self.backoff

    def probe_now(self) -> None:
        """Redis answered on another connection: let the next call probe without waiting."""
        if self.state == "open":
            self.retry_at = self._monotonic()

    def abandoned(self) -> None:
        """A call ended without an answer either way (cancelled): let the next call probe."""
        if self.state == "half-open":
            self.state = "open"
            self.retry_at = self._monotonic()


class Invalidation(NamedTuple):
    """What an invalidation removes: a key, a namespace, tags, a pattern (with its namespace,
    if any) or everything under the key prefix."""

    kind: Literal["key", "namespace", "tags", "pattern", "clear"]
    names: tuple[str, ...] = ()
    """The key, the namespace, the tags, the pattern's source; none for a clear."""
    namespace: str | None = None
    """A pattern's namespace."""

    def __str__(self) -> str:
        names = ", ".join(repr(name) for name in self.names)
        if self.kind == "pattern":
            return f"pattern {names} (namespace {self.namespace!r})"
        return f"{self.kind} {names}".rstrip()


_CLEAR = Invalidation("clear")


Replay = Callable[[], Awaitable[object]]
Replayed = Callable[[Invalidation], Awaitable[object]]
"""Told about each queued invalidation once it has been replayed (see `replay`)."""


class PendingInvalidations:
    """Invalidations waiting for Redis, in order; past `limit`, one full clear replaces them."""

    def __init__(self, limit: int, on_queued: Callable[[], object] | None = None) -> None:
        self.limit = limit
        # Told after each invalidation is queued, to replay them without waiting for a call.
        self._on_queued = on_queued
        self._queue: deque[tuple[Invalidation, Replay]] = deque()
        self.clear_everything = False
        self.size = 0
        """How many are waiting (a pending full clear counts 1): a plain attribute, so that
        the hot paths can check it without a call."""
        self.replayed = 0
        """How many have been replayed since the backend was made (a full clear counts 1)."""

    def __len__(self) -> int:
        return self.size

    def _resize(self) -> None:
        self.size = len(self._queue) + self.clear_everything

    def _queued(self) -> None:
        self._resize()
        if self._on_queued is not None:
            self._on_queued()

    def add(self, invalidation: Invalidation, replay: Replay) -> None:
        """Queue one invalidation (`replay` performs it again)."""
        if self.clear_everything:
            return  # the pending clear removes whatever this would have
        if len(self._queue) >= self.limit:
            logger.warning(
                "more than %d cache invalidations are waiting for Redis; dropping them and "
                "clearing the whole cache prefix when Redis is back",
                self.limit,
            )
            self._queue.clear()
            self.clear_everything = True
            self._queued()
            return
        self._queue.append((invalidation, replay))
        self._queued()

    def add_clear(self, replay: Replay) -> None:
        """Queue a clear: it supersedes everything queued before it (an owed full clear too)."""
        self._queue.clear()
        self.clear_everything = False
        self._queue.append((_CLEAR, replay))
        self._queued()

    async def replay(self, clear: Replay, replayed: Replayed | None = None) -> int:
        """Run the queue in order (a full clear first, if one is owed); the number replayed.

        `replayed` is awaited after each one has run, before the next: it sees them in order,
        each only once Redis has applied it. Stops at the first failure, leaving that
        invalidation and the rest queued.
        """
        done = 0
        if self.clear_everything:
            await clear()
            self.clear_everything = False
            self._resize()
            logger.warning("cleared the cache prefix after Redis came back (queue overflowed)")
            done += 1
            self.replayed += 1
            if replayed is not None:
                await replayed(_CLEAR)
        while self._queue:
            invalidation, replay = self._queue[0]
            await replay()
            self._queue.popleft()
            self._resize()
            logger.info(
                "replayed a queued cache invalidation (%s)",
                invalidation.kind,
                extra={"cache_outcome": "replay"},
            )
            done += 1
            self.replayed += 1
            if replayed is not None:
                await replayed(invalidation)
        return done
