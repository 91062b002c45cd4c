"""The service's lifetime: its background task, the counts it flushes, the stats it reports,
and its end, in order.

Hits and misses are counted in this process (`accounting`) and flushed to the backend now
and then by the background task (`maintenance`), so the stats add the counts not flushed
yet, and closing flushes the last ones before the backend is released.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .accounting import Accounting
from .backends.base import CacheBackend
from .errors import BackendError
from .maintenance import Maintenance
from .models import CacheStats

__all__ = ["Lifetime"]


class Lifetime:
    """Starts and stops one service's background task; reads its stats; closes it once."""

    def __init__(
        self,
        backend: CacheBackend,
        accounting: Accounting,
        sweep: Callable[[], Awaitable[object]],
        *,
        flush_interval: float,
        cleanup_interval: float | None,
    ) -> None:
        self._backend = backend
        self._accounting = accounting
        self.upkeep = Maintenance(
            self.flush, sweep, flush_interval=flush_interval, cleanup_interval=cleanup_interval
        )
        """The background task: counter flushes, and `sweep` every `cleanup_interval`."""
        self.closed = False

    async def flush(self) -> None:
        """Send this process's unflushed hit/miss counts to the backend."""
        await self._accounting.flush(self._backend)

    async def stats(self) -> CacheStats:
        """The backend's stats with this process's counts; the counts alone on a fault."""
        self.upkeep.start()
        await self.flush()
        try:
            stats = await self._backend.stats()
        except BackendError as exc:
            self._accounting.fault(exc)
            # Reported by backends that queue invalidations while they are unreachable.
            pending = getattr(self._backend, "pending_invalidations", 0)
            return self._accounting.stats_without(pending)
        return self._accounting.stats(stats)

    async def close(self, first: Callable[[], Awaitable[None]]) -> None:
        """End for good (a second call does nothing): `first` (work that may still write),
        then the background task, a last flush, and the backend's resources."""
        if self.closed:
            return
        self.closed = True
        await first()
        await self.upkeep.stop()
        await self.flush()
        await self._backend.close()
