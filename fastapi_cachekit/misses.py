"""A get-or-set's miss: who computes the value, and whether it is stored.

While the cache is on, a fill computes it (`fills`: claim, factory, store unless an
invalidation came between), in a flight (`flights`): one per key in this process, which the
callers that miss meanwhile join instead of running the factory again (told to the
observers as "coalesced"). While the cache is off, every caller runs its own factory, and
nothing is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .accounting import Accounting
from .backend_io import BackendIO
from .backends.base import CacheBackend, FillToken
from .events import CacheEvent
from .fills import Fill, call
from .flights import Flights
from .observing import Observation
from .serialization import Codec

__all__ = ["Misses"]


class Misses:
    """The fills of one service, and the flights they run in."""

    def __init__(
        self,
        backend: CacheBackend,
        io: BackendIO,
        codec: Codec,
        accounting: Accounting,
        observation: Observation,
        flights: Flights,
        *,
        lock_timeout: float | None,
    ) -> None:
        self._io = io
        self._accounting = accounting
        self._observation = observation  # its miss counter and emit change with observers
        self._flights = flights
        self._fill = Fill(
            backend, codec, accounting, read=io.read, write=io.write, lock_timeout=lock_timeout
        )

    def flight(
        self,
        key: str,
        fk: str,
        factory: Callable[[], Any],
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
        earlier: asyncio.Future[Any] | None = None,
    ) -> asyncio.Future[Any]:
        """The flight filling `fk`: `earlier` or the one in progress (told as `coalesced`),
        or a new one running `factory` (`Flights.join`)."""
        fill = lambda: self._fill.run(fk, factory, ttl, namespace, tags)  # noqa: E731
        flight, joined = self._flights.join(fk, fill, key, namespace, tags, earlier)
        emit = self._observation.emit
        if joined and emit is not None:
            emit(CacheEvent("coalesced", "service", namespace, key=fk))
        return flight

    async def uncached(
        self, factory: Callable[[], Any], label: str | None, namespace: str | None
    ) -> Any:
        """The cache is off: `factory`'s value, counted as a bypass (in namespace `label`,
        the default applied) and as a miss (in `namespace`, as given)."""
        self._accounting.bypass("fill", label)
        self._observation.miss(namespace)
        return await call(factory)

    async def token(self) -> FillToken | None:
        """A fill token for a caller that computes and stores a value itself (None while
        the cache is off, or when the backend is unavailable)."""
        return await self._fill.token() if self._io.enabled else None
