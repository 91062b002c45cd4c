"""The service's counters (hits, misses, bypasses, faults) and its throttled fault log.

Every fault the service sees is counted here; a backend's stats add only what the service
cannot see (values it could not decode itself, failed background work). Faults and bypasses
are also told to the service's observers from here (`emit`, set by `observing`), so that
every part of the service that counts one tells it too, through one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .backends.base import BackendStats, CacheBackend
from .errors import BackendError
from .events import CacheEvent, Layer
from .models import CacheStats, utc_from_timestamp

__all__ = ["Accounting"]

logger = logging.getLogger("fastapi_cachekit.service")

# Seconds between two fault warnings: a burst of faults (Redis down under load) logs once.
_FAULT_LOG_INTERVAL = 10.0


class Accounting:
    """This process's counts; hits and misses are flushed to the backend's shared totals."""

    def __init__(self, layer: Layer = "service") -> None:
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self.bypasses = 0
        self.layer: Layer = layer
        """The backend's layer: where a fault of a backend call happened."""
        self.emit: Callable[[CacheEvent], None] | None = None
        """The service's observers (None while there are none): see `observing`."""
        self._last_fault_log = -_FAULT_LOG_INTERVAL

    def hit(self, namespace: str | None) -> None:
        """Count a hit (the namespace is for observers: see `observing`)."""
        self.hits += 1

    def miss(self, namespace: str | None) -> None:
        """Count a miss."""
        self.misses += 1

    def fault(self, exc: Exception, layer: Layer | None = None) -> None:
        """Count a fault, log it unless one was logged moments ago (a burst), and tell the
        observers; `layer` where it happened (default: the backend's)."""
        self.record_fault(exc)
        emit = self.emit
        if emit is not None:
            emit(CacheEvent("fault", layer or self.layer, reason=type(exc).__name__))

    def record_fault(self, exc: Exception) -> None:
        """Count and log a fault without telling the observers (an observer's own fault:
        telling it would call it again)."""
        self.errors += 1
        now = time.monotonic()
        if now - self._last_fault_log >= _FAULT_LOG_INTERVAL:
            self._last_fault_log = now
            logger.warning(
                "cache fault, serving without the cache: %s",
                exc,
                extra={"cache_outcome": "fault", "cache_layer": self.layer},
            )

    def not_stored(self, exc: Exception, namespace: str | None, *fks: str) -> None:
        """Values (storage keys `fks`, one write or a batch) that could not be stored because
        of `exc`: one fault, counted and told, and each key told as not stored."""
        self.fault(exc)
        emit = self.emit
        if emit is not None:
            reason = "out_of_memory" if isinstance(exc, MemoryError) else "fault"
            for fk in fks:
                emit(CacheEvent("not_stored", self.layer, namespace, reason, key=fk))

    def bypass(self, reason: str, namespace: str | None = None, count: int = 1) -> None:
        """Count `count` reads, writes or fills skipped because the cache is turned off (a
        batch: one event for all of its keys)."""
        self.bypasses += count
        emit = self.emit
        if emit is not None:
            emit(CacheEvent("bypass", "service", namespace, reason, count=count))

    async def flush(self, backend: CacheBackend) -> None:
        """Move the unflushed hit/miss counts to the backend (kept here if it fails)."""
        hits, misses = self.hits, self.misses
        if not hits and not misses:
            return
        self.hits = self.misses = 0
        try:
            await backend.add_counters(hits, misses)
        except BackendError as exc:
            self.hits += hits
            self.misses += misses
            self.fault(exc)

    def stats(self, backend: BackendStats) -> CacheStats:
        """The cache's stats: the backend's, plus what this process has not flushed yet."""
        hits, misses = backend.hits + self.hits, backend.misses + self.misses
        return CacheStats(
            total_entries=backend.entries,
            total_hits=hits,
            total_misses=misses,
            hit_rate=_rate(hits, misses),
            memory_usage_bytes=backend.memory_bytes,
            oldest_entry=None if backend.oldest is None else utc_from_timestamp(backend.oldest),
            newest_entry=None if backend.newest is None else utc_from_timestamp(backend.newest),
            errors=self.errors + backend.errors,
            pending_invalidations=backend.pending_invalidations,
            bypasses=self.bypasses,
        )

    def stats_without(self, pending_invalidations: int) -> CacheStats:
        """The stats this process can give while the backend cannot answer."""
        return CacheStats(
            total_entries=0,
            total_hits=self.hits,
            total_misses=self.misses,
            hit_rate=_rate(self.hits, self.misses),
            errors=self.errors,
            bypasses=self.bypasses,
            pending_invalidations=pending_invalidations,
        )


def _rate(hits: int, misses: int) -> float:
    total = hits + misses
    return hits / total if total else 0.0
