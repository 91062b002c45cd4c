"""The service's invalidations: everything that removes entries, from one key to all of them.

Each one runs the same way: the backend's removal through `backend_io` (a fault is counted
and answered as nothing removed; Redis queues it and replays it later), then the flights it
covers are detached (`flights`: a fill that began before it must not be joined after it),
then the observers hear one "invalidation" event with its kind, what it removed and how long
it took. The service has checked the keys, namespace, tags or pattern before it calls here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from .backend_io import BackendIO
from .backends.base import CacheBackend
from .batch import Batches
from .events import CacheEvent
from .flights import Flights
from .observing import Observation
from .patterns import GlobPattern

__all__ = ["Invalidations"]


class Invalidations:
    """The removals of one service, each run, detached from its flights, and told."""

    def __init__(
        self,
        backend: CacheBackend,
        io: BackendIO,
        batches: Batches,
        flights: Flights,
        observation: Observation,
    ) -> None:
        self._backend = backend
        self._io = io
        self._batches = batches
        self._flights = flights
        self._observation = observation  # its emit function changes with the observers

    async def key(self, stored_key: str, namespace: str | None) -> bool:
        """Remove one entry; whether a live one was removed."""
        removal = self._backend.delete(stored_key)
        detach = lambda: self._flights.detach_key(stored_key)  # noqa: E731
        return bool(await self._run("key", namespace, removal, detach))

    async def keys(self, stored_keys: Sequence[str], namespace: str | None) -> int:
        """Remove distinct entries in one batch; how many live ones were removed."""
        removal = self._batches.delete_many(stored_keys)
        detach = lambda: self._flights.detach_keys(stored_keys)  # noqa: E731
        return await self._run("key", namespace, removal, detach)

    async def namespace(self, namespace: str) -> int:
        removal = self._backend.invalidate_namespace(namespace)
        detach = lambda: self._flights.detach_namespace(namespace)  # noqa: E731
        return await self._run("namespace", namespace, removal, detach)

    async def tags(self, tags: tuple[str, ...]) -> int:
        if not tags:
            return 0
        removal = self._backend.invalidate_tags(tags)
        return await self._run("tags", None, removal, lambda: self._flights.detach_tags(tags))

    async def pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        """Remove what `pattern` covers: full keys, or one namespace's keys (`keys.py`)."""
        removal = self._backend.invalidate_pattern(pattern, namespace)
        detach = lambda: self._flights.detach_pattern(pattern, namespace)  # noqa: E731
        return await self._run("pattern", namespace, removal, detach)

    async def clear(self) -> int:
        return await self._run("clear", None, self._backend.clear(), self._flights.detach_all)

    async def expired(self) -> int:
        """Sweep expired entries. That invalidates no data: no flight is detached, and a
        failed sweep is not queued (the next one does its work)."""
        return await self._run("expired", None, self._backend.cleanup_expired(), _no_flights)

    async def _run(
        self,
        kind: str,
        namespace: str | None,
        removal: Awaitable[int | bool],
        detach: Callable[[], None],
    ) -> int:
        """Run `removal`, then `detach`, and tell the observers what it removed."""
        started = time.perf_counter()
        result = await self._io.invalidate(removal, detach)  # None: it failed
        removed = int(result or 0)
        emit = self._observation.emit
        if emit is not None:
            seconds = time.perf_counter() - started
            # A failed invalidation is queued by a backend that can (Redis: replayed later).
            queued = result is None and kind != "expired" and self._io.queues_invalidations
            emit(
                CacheEvent(
                    "invalidation", "service", namespace, kind, removed, seconds, queued=queued
                )
            )
        return removed


def _no_flights() -> None:
    """What a sweep detaches: nothing."""
