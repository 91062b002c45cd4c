"""The service's batches: `get_many`, `set_many` and `delete_many` over the backend's batch
calls (`BatchBackend`), with the single-key calls' rules.

The service has checked every key, the TTL and the tags, and encoded every value, before it
calls here: bad input raises before anything is read or written. Here, as for single keys, a
backend fault is counted and answered as misses or a skipped write, the off switch skips
reads and writes (each key counted as a bypass, told as one event with its count) but not
deletes, hits and misses are counted, and told to the observers, per key, and so is each
write's outcome (stored or not_stored, by `BackendIO.tell_write`, as for single writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .accounting import Accounting
from .backend_io import OUT_OF_MEMORY, BackendIO
from .backends.base import BatchBackend, CacheBackend, FillToken
from .errors import BackendError, SerializationError
from .maintenance import Maintenance
from .observing import Observation
from .serialization import Codec

__all__ = ["Batches", "many"]


class Batches:
    """The batch calls of one service (its backend, counters, codec and observers)."""

    def __init__(
        self,
        backend: CacheBackend,
        io: BackendIO,
        accounting: Accounting,
        upkeep: Maintenance,
        codec: Codec,
        observation: Observation,
    ) -> None:
        self._backend = backend if isinstance(backend, BatchBackend) else OneByOne(backend)
        self._io = io
        self._accounting = accounting
        self._upkeep = upkeep
        self._codec = codec
        self._observation = observation

    async def get_many(
        self, keys: Sequence[tuple[str, str]], namespace: str | None
    ) -> dict[str, Any]:
        """The decoded value of every (key, storage key) that hit, by key; each key counted
        (and told to the observers) as a hit or a miss in `namespace`, as `get` counts."""
        if not keys:
            return {}
        found: list[bytes | None] = [None] * len(keys)
        if self._io.enabled:
            self._start()
            try:
                found = await self._backend.get_many([stored for _, stored in keys])
            except BackendError as exc:
                self._accounting.fault(exc)
        else:
            self._accounting.bypass("read", namespace, len(keys))
        hits: dict[str, Any] = {}
        decode, hit, miss = self._codec.decode, self._observation.hit, self._observation.miss
        for (key, _), data in zip(keys, found, strict=True):
            if data is not None:
                try:
                    hits[key] = decode(data)
                except SerializationError as exc:
                    self._accounting.fault(exc, "service")
                else:
                    hit(namespace)
                    continue
            miss(namespace)
        return hits

    async def set_many(
        self,
        items: Sequence[tuple[str, Any]],
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
        fill: FillToken | None,
    ) -> int:
        """How many of (storage key, value) were stored (none on a fault). Every value is
        encoded before anything is written: one the codec refuses raises, and none is stored.
        """
        if not items:
            return 0
        stored_keys = [stored_key for stored_key, _ in items]
        try:
            encode = self._codec.encode
            encoded = [(stored_key, encode(value)) for stored_key, value in items]
            if not self._io.enabled:
                self._accounting.bypass("write", namespace, len(items))
                return 0
            self._start()
            stored = await self._backend.set_many(
                encoded, ttl=ttl, namespace=namespace, tags=tags, fill=fill
            )
        except BackendError as exc:
            self._accounting.not_stored(exc, namespace, *stored_keys)
            return 0
        except MemoryError:
            self._accounting.not_stored(MemoryError(OUT_OF_MEMORY), namespace, *stored_keys)
            return 0
        if self._accounting.emit is not None:  # each key's outcome, as for a single write
            for stored_key, outcome in zip(stored_keys, stored, strict=True):
                self._io.tell_write(outcome, stored_key, namespace, fill)
        return sum(stored)

    async def delete_many(self, stored_keys: Sequence[str]) -> int:
        """Remove the entries (whether the cache is on or off); the live ones removed. The
        service runs it as an invalidation (faults, flights, observers: see `service`)."""
        return await self._backend.delete_many(stored_keys)

    def _start(self) -> None:
        if self._upkeep.task is None:
            self._upkeep.start()


class OneByOne:
    """The batch calls of a backend that has none (not a `BatchBackend`): its single-key
    calls, one after the other."""

    def __init__(self, backend: CacheBackend) -> None:
        self._backend = backend

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self._backend.get(key) for key in keys]

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> list[bool]:
        options: dict[str, Any] = {"ttl": ttl, "namespace": namespace, "tags": tags}
        return [await self._backend.set(k, v, fill=fill, **options) for k, v in items]

    async def delete_many(self, keys: Sequence[str]) -> int:
        return sum([await self._backend.delete(key) for key in keys])


def many(keys: Iterable[str]) -> Iterable[str]:
    """`keys`, refused if it is one string (it would be taken for its characters)."""
    if isinstance(keys, (str, bytes)):
        raise TypeError(
            f"keys must be an iterable of keys, not one {type(keys).__name__}; "
            f"wrap a single key in a list: [{keys!r}]"
        )
    return keys
