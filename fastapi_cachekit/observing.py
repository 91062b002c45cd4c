"""The service's observers: who hears its events, and the counters that tell them.

The service counts a read with `hit(namespace)` or `miss(namespace)`. Without an observer those
are the accounting's own methods; with one, they count and then emit. So a service nobody
observes pays nothing for the feature: the swap happens when an observer is added or removed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from .accounting import Accounting
from .events import CacheEvent, CacheObserver, Layer

__all__ = ["Observation"]

logger = logging.getLogger("fastapi_cachekit.service")

Count = Callable[[str | None], None]


class Observation:
    """The observers of one service, told each event in turn; one that raises is counted
    as a fault and logged, and the others still hear the event."""

    def __init__(
        self,
        accounting: Accounting,
        layer: Layer,
        default_namespace: str | None,
        *,
        counting: bool = True,
    ) -> None:
        self._accounting = accounting
        self._layer = layer
        self._default_namespace = default_namespace
        self._counting = counting
        self._observers: tuple[CacheObserver, ...] = ()
        self.emit: Callable[[CacheEvent], None] | None = None
        """Tell every observer an event; None while nobody observes (test it first)."""
        self.hit: Count = _ignore
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
        if not self._observers:
            self.emit = None
            self.hit = count.hit if self._counting else _ignore
            self.miss = count.miss if self._counting else _ignore
            return
        emit = self.emit = self._tell_all
        layer, default = self._layer, self._default_namespace
        counted_hit = count.hit if self._counting else _ignore
        counted_miss = count.miss if self._counting else _ignore

        def hit(namespace: str | None) -> None:
            counted_hit(namespace)
            emit(CacheEvent("hit", layer, default if namespace is None else namespace))

        def miss(namespace: str | None) -> None:
            counted_miss(namespace)
            emit(CacheEvent("miss", layer, default if namespace is None else namespace))

        self.hit, self.miss = hit, miss

    def _tell_all(self, event: CacheEvent) -> None:
        for observer in self._observers:
            try:
                observer.event(event)
            except Exception as exc:  # an observer's bug must not reach the cache's caller
                self._accounting.fault(exc)


def observers_of(observers: CacheObserver | Iterable[CacheObserver] | None) -> list[CacheObserver]:
    """`observers=` as a list: one observer, several, or none."""
    if observers is None:
        return []
    if isinstance(observers, CacheObserver):
        return [observers]
    return list(observers)


def _ignore(namespace: str | None) -> None:
    """Uncounted reads (`enable_stats=False`)."""
