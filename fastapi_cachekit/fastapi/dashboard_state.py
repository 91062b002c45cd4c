"""What the admin dashboard remembers between polls: hit/miss samples and recent invalidations.

Both are bounded rings kept in this process. The hit ratio history samples the service's
*totals* (the stats' hits and misses) when the page polls, at most once per `sample_seconds`:
with Redis the totals are every process's, so the samples any worker takes describe the whole
fleet, and the page can merge the samples of whichever workers answered its polls. Counting
this process's hit and miss events instead would show one worker's share of the traffic.

Invalidations are heard as events (`service.add_observer`), so they are this process's own: each
carries the process id and a sequence number, and the page merges the lists of the workers that
answer it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ..events import CacheEvent

__all__ = ["HitHistory", "Invalidated", "RecentInvalidations"]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Invalidated:
    """One invalidation heard: `kind` is the event's reason ("tags", "namespace", "pattern",
    "key", "clear", "expired"), `at` seconds since the epoch."""

    pid: int
    seq: int
    at: float
    kind: str
    count: int
    namespace: str | None


class RecentInvalidations:
    """A CacheObserver keeping the last `size` invalidation events; every other kind of
    event is dropped at once, and so are expiry sweeps that removed nothing (the service's
    periodic cleanup would otherwise push every real invalidation out of the ring)."""

    kinds: Final = frozenset({"invalidation"})
    """Only invalidations: the service then tells this ring no reads (`events.CacheObserver`)."""

    def __init__(self, size: int = 50, clock: Clock = time.time) -> None:
        self._items: deque[Invalidated] = deque(maxlen=size)
        self._clock = clock
        self._seq = 0
        self._pid = os.getpid()
        self.since: float | None = None
        """When this ring started listening (None before `started`)."""

    def started(self) -> None:
        if self.since is None:
            self.since = self._clock()

    def event(self, event: CacheEvent) -> None:
        if event.kind != "invalidation" or (event.reason == "expired" and not event.count):
            return
        self._seq += 1
        kind = event.reason or "unknown"
        self._items.append(
            Invalidated(self._pid, self._seq, self._clock(), kind, event.count, event.namespace)
        )

    def latest(self) -> list[Invalidated]:
        """Newest first."""
        return list(reversed(self._items))


class HitHistory:
    """Samples of the (hits, misses) totals, at most one per `sample_seconds`, for
    `minutes` minutes."""

    def __init__(
        self, minutes: float = 15.0, sample_seconds: float = 5.0, clock: Clock = time.time
    ) -> None:
        if sample_seconds <= 0 or minutes <= 0:
            raise ValueError("minutes and sample_seconds must be positive")
        self.minutes = minutes
        self.sample_seconds = sample_seconds
        self._samples: deque[tuple[float, int, int]] = deque(
            maxlen=max(2, int(minutes * 60 / sample_seconds) + 1)
        )
        self._clock = clock

    def sample(self, hits: int, misses: int) -> list[tuple[float, int, int]]:
        """Record the totals if the last sample is old enough; every sample, oldest first."""
        now = self._clock()
        if not self._samples or now - self._samples[-1][0] >= self.sample_seconds:
            self._samples.append((now, hits, misses))
        return list(self._samples)
