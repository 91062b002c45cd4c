"""Single flight: this process's fills in progress, at most one per storage key.

A caller that misses joins the flight for its key, if one is in progress, instead of running
the factory again. An invalidation detaches the flights it covers once it has been applied:
a flight that began before it may return the very value it removed, so callers that arrive
after it start a fresh flight. A detached flight still answers the callers already on it
(they came before the invalidation returned) and does not store its result (its fill token
is older than the invalidation).

Flights are futures of one event loop: when calls come from another loop (`asyncio.run`
called again, a test client per test), the old loop's flights are forgotten, not joined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from .keys import pattern_covers
from .patterns import GlobPattern

__all__ = ["Flight", "Flights", "landing"]


@dataclass(frozen=True, slots=True)
class Flight:
    """One fill in progress: its result, and what an invalidation matches it by."""

    future: asyncio.Future[Any]
    key: str
    namespace: str | None
    tags: tuple[str, ...]


class Flights:
    """The flights in progress, by storage key."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def join(
        self,
        storage_key: str,
        fill: Callable[[], Coroutine[Any, Any, Any]],
        key: str,
        namespace: str | None,
        tags: tuple[str, ...],
        earlier: asyncio.Future[Any] | None = None,
    ) -> tuple[asyncio.Future[Any], bool]:
        """The flight in progress for `storage_key`, or a new one running `fill()`; and
        whether the caller joined one in progress (it then runs no factory of its own).

        `earlier` is the flight that was in progress when the caller began the read that
        missed. It is joined even if it has landed since: a flight that stores and lands
        between that read and this call would otherwise have the caller run the factory a
        second time, for a value no newer."""
        if earlier is not None and not earlier.cancelled():
            return earlier, True
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._flights = loop, {}
        flight = self._flights.get(storage_key)
        if flight is not None:
            return flight.future, True
        flight = Flight(loop.create_task(fill()), key, namespace, tags)
        self._flights[storage_key] = flight
        flight.future.add_done_callback(lambda done: self._land(storage_key, done))
        return flight.future, False

    def in_progress(self, storage_key: str) -> bool:
        """Whether a flight of this event loop is filling `storage_key` (not detached)."""
        return self.current(storage_key) is not None

    def current(self, storage_key: str) -> asyncio.Future[Any] | None:
        """The flight of this event loop filling `storage_key` (not detached), if any."""
        flight = self._flights.get(storage_key)
        if flight is None or self._loop is not asyncio.get_running_loop():
            return None
        return flight.future

    def detach_key(self, storage_key: str) -> None:
        self._flights.pop(storage_key, None)

    def detach_keys(self, storage_keys: Iterable[str]) -> None:
        for storage_key in storage_keys:
            self._flights.pop(storage_key, None)

    def detach_namespace(self, namespace: str) -> None:
        self._detach(lambda flight: flight.namespace == namespace)

    def detach_tags(self, tags: tuple[str, ...]) -> None:
        wanted = set(tags)
        self._detach(lambda flight: not wanted.isdisjoint(flight.tags))

    def detach_pattern(self, pattern: GlobPattern, namespace: str | None) -> None:
        """The flights `invalidate_pattern(pattern, namespace)` covers (`keys.pattern_covers`)."""
        covered = [
            stored
            for stored, flight in self._flights.items()
            if pattern_covers(pattern, namespace, stored, flight.namespace)
        ]
        for stored in covered:
            del self._flights[stored]

    def detach_all(self) -> None:
        self._flights = {}

    def _detach(self, covers: Callable[[Flight], bool]) -> None:
        for storage_key in [k for k, flight in self._flights.items() if covers(flight)]:
            del self._flights[storage_key]

    def _land(self, storage_key: str, future: asyncio.Future[Any]) -> None:
        flight = self._flights.get(storage_key)
        if flight is not None and flight.future is future:
            del self._flights[storage_key]
        if not future.cancelled():
            future.exception()  # retrieved here, so an unawaited failure is not reported twice


def landing(flight: asyncio.Future[Any]) -> asyncio.Future[None]:
    """A future that is done when `flight` is, however it ends. A caller waits on it in
    place of the flight: its own cancellation cancels only this future (the flight goes on for
    the others), and a flight cancelled under it (`close()`) ends its wait like any other end,
    so the caller can tell the two apart (`flight.cancelled()`) on every Python."""
    landed: asyncio.Future[None] = flight.get_loop().create_future()

    def land(_: asyncio.Future[Any]) -> None:
        if not landed.done():  # a cancelled waiter has gone
            landed.set_result(None)

    flight.add_done_callback(land)
    return landed
