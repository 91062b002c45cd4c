"""The service's observers: who hears its events, and the counters that tell them.

The service counts a read with `hit(namespace)` (`hit_nowait` when the backend's synchronous
fast path answered: a hybrid's L1) or `miss(namespace)`. Without an observer those are the
accounting's own methods; with one, they count and then emit. So a service nobody observes
pays nothing for the feature: the swap happens when an observer is added or removed, and so
does the accounting's `emit` (faults, bypasses) and the backend's (`observe(emit)`, for the
events only a backend sees: a Redis breaker, a replay).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet

from .accounting import Accounting
from .events import CacheEvent, CacheObserver, EventKind, Layer

__all__ = ["Observation"]

logger = logging.getLogger("fastapi_cachekit.service")

Count = Callable[[str | None], None]

_MAX_MEMO_NAMESPACES = 256


class Observation:
    """The observers of one service, told each event in turn; one that raises is counted
    as a fault and logged, and the others still hear the event."""

    def __init__(
        self,
        accounting: Accounting,
        layers: tuple[Layer, Layer],
        default_namespace: str | None,
        *,
        counting: bool = True,
        backend: object = None,
    ) -> None:
        self._accounting = accounting
        self._nowait_layer, self._layer = layers
        self._default_namespace = default_namespace
        # A backend with events of its own is told the emit function (`observe(emit)`).
        self._observe_backend: Callable[[Callable[[CacheEvent], None] | None], None] | None = (
            getattr(backend, "observe", None)
        )
        self._counting = counting
        self._observers: tuple[CacheObserver, ...] = ()
        self.emit: Callable[[CacheEvent], None] | None = None
        """Tell every observer an event; None while nobody observes (test it first)."""
        self.hit: Count = _ignore
        self.hit_nowait: Count = _ignore
        self.miss: Count = _ignore
        self._wire()

    @property
    def observers(self) -> tuple[CacheObserver, ...]:
        return self._observers

    def add(self, observer: CacheObserver) -> None:
        if not isinstance(observer, CacheObserver):
            raise TypeError(
                f"an observer needs an event(event) method; got {type(observer).__name__}"
            )
        if observer not in self._observers:
            self._observers = (*self._observers, observer)
            self._wire()

    def remove(self, observer: CacheObserver) -> None:
        self._observers = tuple(o for o in self._observers if o is not observer)
        self._wire()

    def _wire(self) -> None:
        count = self._accounting
        counted_hit = count.hit if self._counting else _ignore
        counted_miss = count.miss if self._counting else _ignore
        had_observers = self.emit is not None
        emit = self.emit = self._tell_all if self._observers else None
        count.emit = emit
        # Only on a change: a service built without observers on a backend another service
        # observes must not silence it.
        if self._observe_backend is not None and (emit is not None or had_observers):
            self._observe_backend(emit)
        if emit is None or not any(map(_hears_reads, self._observers)):
            self.hit = self.hit_nowait = counted_hit
            self.miss = counted_miss
            return
        self.hit = self._telling(counted_hit, emit, "hit", self._layer)
        self.hit_nowait = self._telling(counted_hit, emit, "hit", self._nowait_layer)
        self.miss = self._telling(counted_miss, emit, "miss", self._layer)

    def _telling(
        self, count: Count, emit: Callable[[CacheEvent], None], kind: EventKind, layer: Layer
    ) -> Count:
        """`count`, then an event of `kind` in `layer` with the read's namespace.

        Events are immutable and a read's depends only on its namespace, so each is built
        once and told again (building one costs more than the rest of a memory hit); the
        memo is bounded like the middleware's, cleared when full."""
        default = self._default_namespace
        built: dict[str | None, CacheEvent] = {}

        def counted_and_told(namespace: str | None) -> None:
            count(namespace)
            event = built.get(namespace)
            if event is None:
                if len(built) >= _MAX_MEMO_NAMESPACES:
                    built.clear()
                name = default if namespace is None else namespace
                event = built[namespace] = CacheEvent(kind, layer, name)
            emit(event)

        return counted_and_told

    def _tell_all(self, event: CacheEvent) -> None:
        for observer in self._observers:
            try:
                observer.event(event)
            except Exception as exc:  # an observer's bug must not reach the cache's caller
                self._accounting.record_fault(exc)


def observers_of(observers: CacheObserver | Iterable[CacheObserver] | None) -> list[CacheObserver]:
    """`observers=` as a list: one observer, several, or none."""
    if observers is None:
        return []
    if isinstance(observers, CacheObserver):
        return [observers]
    return list(observers)


def _hears_reads(observer: CacheObserver) -> bool:
    """Whether `observer` wants hits or misses (its optional `kinds`; absent: every kind)."""
    kinds = getattr(observer, "kinds", None)
    if not isinstance(kinds, AbstractSet):
        return True
    return "hit" in kinds or "miss" in kinds


def _ignore(namespace: str | None) -> None:
    """Uncounted reads (`enable_stats=False`)."""
