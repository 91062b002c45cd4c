"""Early refresh: serve the stored value while one caller recomputes it shortly before expiry.

With `refresh_ahead` seconds, a hit on an entry with that long or less left returns the
stored value at once and starts the key's flight in the background (`flights`). It is the
same fill as on a miss (`fills`): it takes a fill token first, so an invalidation while it
runs keeps its result out (and detaches it); it runs once per key in this process; across
processes it claims the key when a fill lock is configured. Callers that miss once the entry
has expired join that flight instead of starting another, so a hot key never has all its
callers wait at expiry.

Why a window and not XFetch (probabilistic early expiration): the flights and the fill lock
already make one caller the one that recomputes, so there is nothing left for randomness to
spread; a window needs only the seconds an entry has left, which every backend keeps
(`TTLReads`), where XFetch would need each value's compute time stored beside it.

A refresh never raises into a caller. Its failure is logged (throttled), and the key is not
refreshed ahead again until a read misses it (its value expired or was removed), so a failing
data source is not called on every hit. `close()` cancels the refreshes in progress; a caller
that had joined one (it missed once the entry expired) runs its factory itself, uncached
(`service.get_or_set_async`), rather than getting the cancellation.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from .accounting import Accounting
from .backend_io import BackendIO
from .backends.base import DEFERRED, CacheBackend, TTLReads
from .errors import SerializationError
from .flights import Flights
from .observing import Observation
from .serialization import Codec

__all__ = ["MISSING", "EarlyRefresh", "RefreshAhead"]

logger = logging.getLogger("fastapi_cachekit.refresh")

RefreshAhead = timedelta | int | float | None
"""How long before expiry a hit starts a refresh: seconds, a timedelta, or None (never)."""

MISSING: Final = object()
"""`EarlyRefresh.read`'s answer on a miss."""

_FAILURE_LOG_INTERVAL = 10.0  # seconds between two warnings about failed refreshes
_MAX_FAILED_KEYS = 10_000  # keys remembered as failed; past it the memory starts afresh


def refresh_seconds(refresh_ahead: RefreshAhead) -> float | None:
    """`refresh_ahead` in seconds (None: no early refresh); raises for anything else."""
    if refresh_ahead is None:
        return None
    if isinstance(refresh_ahead, timedelta):
        seconds: float = refresh_ahead.total_seconds()
    elif isinstance(refresh_ahead, (int, float)) and not isinstance(refresh_ahead, bool):
        seconds = float(refresh_ahead)
    else:
        raise TypeError(
            "refresh_ahead must be seconds (int/float), a timedelta or None, got "
            f"{type(refresh_ahead).__name__}"
        )
    if not 0 < seconds < math.inf:  # also NaN
        raise ValueError(
            f"refresh_ahead must be a positive, finite number of seconds, got {refresh_ahead!r}"
            "; pass None for no early refresh"
        )
    return seconds


def check_window(ahead: float, ttl: float | None) -> None:
    """Refuse a window that cannot work with `ttl`: the error says what to change."""
    if ttl is None:
        raise ValueError(
            "refresh_ahead needs a ttl: an entry stored with ttl=None never expires, so it "
            "is never refreshed ahead; give a ttl, or leave refresh_ahead out"
        )
    if ahead >= ttl:
        raise ValueError(
            f"refresh_ahead ({ahead:g} s) must be shorter than the ttl ({ttl:g} s): every hit "
            "would start a refresh; choose a window of the factory's duration or a few times it"
        )


class EarlyRefresh:
    """The service's reads that start refreshes, and the refreshes in progress."""

    def __init__(
        self,
        backend: CacheBackend,
        io: BackendIO,
        codec: Codec,
        accounting: Accounting,
        observation: Observation,
        flights: Flights,
    ) -> None:
        self._backend_name = type(backend).__name__
        self._supported = isinstance(backend, TTLReads)
        self._io = io
        self._codec = codec
        self._accounting = accounting
        self._observation = observation  # its hit and miss counters change with observers
        self._flights = flights
        self._running: set[asyncio.Future[Any]] = set()
        self._failed: set[str] = set()
        self._last_failure_log = -_FAILURE_LOG_INTERVAL

    def window(self, refresh_ahead: RefreshAhead, ttl: float | None) -> float | None:
        """The window in seconds for entries stored with `ttl` (None: no early refresh)."""
        ahead = refresh_seconds(refresh_ahead)
        if ahead is None:
            return None
        if not self._supported:
            raise TypeError(
                f"refresh_ahead needs a backend that tells how long an entry has left "
                f"(TTLReads), and {self._backend_name} does not; the memory, redis and "
                "hybrid backends do, or leave refresh_ahead out"
            )
        check_window(ahead, ttl)
        return ahead

    async def read(
        self,
        fk: str,
        namespace: str | None,
        ahead: float,
        start: Callable[[], asyncio.Future[Any]],
    ) -> Any:
        """The stored value (MISSING on a miss), counted as `get` counts it; with `ahead`
        seconds or less left, `start()` starts the key's flight, which is then tracked."""
        counted = self._observation
        found, hit = self._io.read_with_ttl_nowait(fk), counted.hit_nowait
        if found is DEFERRED:
            found, hit = await self._io.read_with_ttl_awaited(fk), counted.hit
        if found is not None:
            data, left = found
            try:
                value = self._codec.decode(data)
            except SerializationError as exc:
                self._accounting.fault(exc, "service")
            else:
                hit(namespace)
                if left is not None and left <= ahead and self._may_start(fk):
                    self._track(fk, start())
                return value
        self._failed.discard(fk)  # the value it could not refresh is gone: try again
        counted.miss(namespace)
        return MISSING

    async def close(self) -> None:
        """Cancel the refreshes in progress (those of this event loop: the others ended with
        theirs) and wait for them to end."""
        loop = asyncio.get_running_loop()
        running = [future for future in self._running if future.get_loop() is loop]
        self._running.clear()
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _may_start(self, fk: str) -> bool:
        """Neither refreshing nor filling `fk` already, nor given up on its current value."""
        return fk not in self._failed and not self._flights.in_progress(fk)

    def _track(self, fk: str, future: asyncio.Future[Any]) -> None:
        self._running.add(future)
        future.add_done_callback(lambda done: self._landed(fk, done))

    def _landed(self, fk: str, future: asyncio.Future[Any]) -> None:
        self._running.discard(future)
        if future.cancelled() or future.exception() is None:
            return
        if len(self._failed) >= _MAX_FAILED_KEYS:
            self._failed.clear()
        self._failed.add(fk)
        now = time.monotonic()
        if now - self._last_failure_log >= _FAILURE_LOG_INTERVAL:
            self._last_failure_log = now
            logger.warning(
                "early refresh of %r failed; the stored value is served until it expires: %r",
                fk,
                future.exception(),
            )
