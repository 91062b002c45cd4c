"""The service's calls to its backend: faults answered as a miss or a skipped write, the
synchronous fast path taken where the backend has one, and the off switch.

Every write's outcome is decided here, so "stored" and "not_stored" events are told here
(only when the service has observers: `Accounting.emit`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from .accounting import Accounting
from .backends.base import (
    DEFERRED,
    CacheBackend,
    Deferred,
    FillToken,
    NowaitReads,
    NowaitWrites,
    TTLReads,
)
from .errors import BackendError
from .events import CacheEvent
from .maintenance import Maintenance

__all__ = ["OUT_OF_MEMORY", "BackendIO"]

T = TypeVar("T")

# A value too big for the memory left is not the caller's error: the process may well have
# room to serve the request without caching it, so it is a fault, answered as a skipped write.
OUT_OF_MEMORY = "out of memory while encoding or storing a value; it was not cached"


class BackendIO:
    """Reads, writes and invalidations that never raise a backend fault (they count it).

    A read or a write starts the service's background task if it is not running.
    """

    def __init__(self, backend: CacheBackend, accounting: Accounting, upkeep: Maintenance) -> None:
        self._backend = backend
        self._accounting = accounting
        self._upkeep = upkeep
        # A backend that can answer without awaiting (NowaitReads, NowaitWrites: the memory
        # backend, a hybrid's L1) is called that way: a coroutine costs more than a memory
        # hit itself.
        self._live = (
            backend.get_nowait if isinstance(backend, NowaitReads) else _deferred,
            backend.set_nowait if isinstance(backend, NowaitWrites) else _deferred,
        )
        self._get_nowait: Callable[[str], bytes | Deferred | None]
        self._set_nowait: Callable[..., bool | Deferred]
        self.enabled = True
        self.switch(enabled=True)
        self.queues_invalidations = hasattr(backend, "pending_invalidations")
        """Whether a failed invalidation is queued and replayed later (Redis, hybrid)."""

    def switch(self, *, enabled: bool) -> None:
        """Turn reads and writes on or off (off: they miss and store nothing, counted as
        bypasses). The entry points are swapped, so that the hot paths test nothing."""
        self.enabled = enabled
        self._get_nowait, self._set_nowait = (
            self._live if enabled else (self._bypass_read, self._bypass_write)
        )

    async def read(self, fk: str) -> bytes | None:
        """The stored bytes, or None on a miss or a fault."""
        data = self.read_nowait(fk)
        return await self.read_awaited(fk) if data is DEFERRED else data

    def read_nowait(self, fk: str) -> bytes | Deferred | None:
        """`read` without a coroutine where the backend can (memory, a hybrid's L1), else
        DEFERRED: then `read_awaited` answers. `get`, the hottest path, saves a coroutine."""
        if self._upkeep.task is None:
            self._upkeep.start()
        try:
            return self._get_nowait(fk)
        except BackendError as exc:
            self._accounting.fault(exc)
            return None

    async def read_awaited(self, fk: str) -> bytes | None:
        """The backend's awaited `get`, or None on a fault."""
        try:
            return await self._backend.get(fk)
        except BackendError as exc:
            self._accounting.fault(exc)
            return None

    def read_with_ttl_nowait(self, fk: str) -> tuple[bytes, float | None] | Deferred | None:
        """The stored bytes and their seconds left (`TTLReads`; None on a miss or a fault),
        without a coroutine where the backend can, else DEFERRED: then `read_with_ttl_awaited`.
        The backend must have TTLReads (early refresh checks it first)."""
        if not self.enabled:
            self._bypass_read(fk)
            return None
        if self._upkeep.task is None:
            self._upkeep.start()
        try:
            return cast(TTLReads, self._backend).get_with_ttl_nowait(fk)
        except BackendError as exc:
            self._accounting.fault(exc)
            return None

    async def read_with_ttl_awaited(self, fk: str) -> tuple[bytes, float | None] | None:
        """The backend's awaited `get_with_ttl`, or None on a fault."""
        try:
            return await cast(TTLReads, self._backend).get_with_ttl(fk)
        except BackendError as exc:
            self._accounting.fault(exc)
            return None

    async def write(
        self,
        fk: str,
        data: bytes,
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
        fill: FillToken | None,
    ) -> bool:
        """Whether `data` was stored (False on a fault, or a stale `fill` token)."""
        stored = self.write_nowait(fk, data, ttl, namespace, tags, fill)
        if stored is DEFERRED:
            return await self.write_awaited(fk, data, ttl, namespace, tags, fill)
        return stored

    def write_nowait(
        self,
        fk: str,
        data: bytes,
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
        fill: FillToken | None,
    ) -> bool | Deferred:
        """`write` without a coroutine where the backend can, else DEFERRED (nothing stored:
        then `write_awaited` stores)."""
        if self._upkeep.task is None:
            self._upkeep.start()
        try:
            stored = self._set_nowait(fk, data, ttl=ttl, namespace=namespace, tags=tags, fill=fill)
        except (BackendError, MemoryError) as exc:
            return self._write_failed(exc, fk, namespace)
        if self._accounting.emit is not None and stored is not DEFERRED and self.enabled:
            self.tell_write(stored, fk, namespace, fill)
        return stored

    async def write_awaited(
        self,
        fk: str,
        data: bytes,
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
        fill: FillToken | None,
    ) -> bool:
        """The backend's awaited `set`, or False on a fault."""
        try:
            stored = await self._backend.set(
                fk, data, ttl=ttl, namespace=namespace, tags=tags, fill=fill
            )
        except (BackendError, MemoryError) as exc:
            return self._write_failed(exc, fk, namespace)
        if self._accounting.emit is not None:
            self.tell_write(stored, fk, namespace, fill)
        return stored

    def _write_failed(
        self, exc: BackendError | MemoryError, fk: str, namespace: str | None
    ) -> bool:
        failure = MemoryError(OUT_OF_MEMORY) if isinstance(exc, MemoryError) else exc
        self._accounting.not_stored(failure, namespace, fk)
        return False

    def tell_write(
        self, stored: bool, fk: str, namespace: str | None, fill: FillToken | None
    ) -> None:
        """Tell a write's outcome (a single write's, or each of a batch's: `batch`), when
        the service has observers. A backend refuses a fill when the key, its namespace, a tag
        or a pattern was invalidated since its token ("fill_refused"); the memory backend also
        refuses a value past its byte bound ("refused" without a token)."""
        emit = self._accounting.emit
        assert emit is not None
        layer = self._accounting.layer
        if stored:
            emit(CacheEvent("stored", layer, namespace, key=fk))
        else:
            reason = "refused" if fill is None else "fill_refused"
            emit(CacheEvent("not_stored", layer, namespace, reason, key=fk))

    async def exists(self, fk: str) -> bool:
        if not self.enabled:
            return False
        try:
            return await self._backend.exists(fk)
        except BackendError as exc:
            self._accounting.fault(exc)
            return False

    async def invalidate(self, operation: Awaitable[T], detach: Callable[[], None]) -> T | None:
        """Run an invalidation (a fault: None), then detach the flights it covers. Only
        then: a flight that began while it ran may have read the old value too."""
        try:
            return await operation
        except BackendError as exc:
            self._accounting.fault(exc)
            return None
        finally:
            detach()

    def _bypass_read(self, fk: str) -> None:
        self._accounting.bypass("read")

    def _bypass_write(self, *args: Any, namespace: str | None, **kwargs: Any) -> bool:
        self._accounting.bypass("write", namespace)
        return False


def _deferred(*args: Any, **kwargs: Any) -> Deferred:
    """The `*_nowait` stand-in for a backend without a synchronous fast path."""
    return DEFERRED
