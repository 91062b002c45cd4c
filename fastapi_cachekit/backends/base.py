"""The port every storage backend satisfies (CacheBackend, the cache adapter).

Backends store encoded bytes under full keys; they know namespaces and tags only as index
labels, and nothing of codecs, decorators or HTTP. Times are seconds since the epoch, from the
clock the backend was given.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from ..patterns import GlobPattern

__all__ = [
    "DEFERRED",
    "BackendStats",
    "BatchBackend",
    "CacheBackend",
    "Deferred",
    "FillToken",
    "LabelCounting",
    "LabelCounts",
    "NowaitReads",
    "NowaitWrites",
    "TTLReads",
    "top_labels",
]

FillToken = int
"""A snapshot of a backend's invalidation sequence, taken before a value is computed."""


@dataclass(frozen=True)
class BackendStats:
    """What a backend knows about its contents and its shared counters."""

    entries: int
    memory_bytes: int | None
    oldest: float | None
    newest: float | None
    hits: int = 0
    misses: int = 0
    errors: int = 0
    pending_invalidations: int = 0


@runtime_checkable
class CacheBackend(Protocol):
    """Storage for encoded values with TTL, namespace and tag indexes.

    Contract (tested on every backend by tests/contract):

    - `get`/`exists` never return an expired entry;
    - `set` replaces the entry, its namespace and its tags; with a `fill` token it stores only
      if nothing that would have removed this entry (a delete of the key, an invalidation of
      its namespace, one of its tags, a matching pattern, or a clear) happened since the token
      was taken, and returns whether it stored;
    - invalidations return the number of live entries they removed;
    - faults are raised as BackendError / BackendUnavailable, never as a client library's error.
    """

    async def get(self, key: str) -> bytes | None:
        """The stored bytes of a live entry, or None."""

    async def exists(self, key: str) -> bool:
        """Whether a live entry is stored under `key`."""

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> bool:
        """Store `value` for `ttl` seconds (None: no expiry); see the class contract."""

    async def fill_token(self) -> FillToken:
        """A token for a later `set(..., fill=token)`."""

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        """Claim the right to compute `key` for up to `ttl` seconds, across processes.

        Returns an owner token, or None when another process holds the claim. A backend
        private to one process always grants it (the service dedupes within a process).
        """

    async def release_fill_lock(self, key: str, owner: str) -> None:
        """Give up a claim taken with `acquire_fill_lock`, if `owner` still holds it."""

    async def delete(self, key: str) -> bool:
        """Remove one entry; True if a live one was removed."""

    async def invalidate_namespace(self, namespace: str) -> int:
        """Remove the entries written with exactly this namespace."""

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Remove the entries carrying any of these tags."""

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        """Remove entries whose full key matches (or, with a namespace, whose key within it)."""

    async def clear(self) -> int:
        """Remove every entry this backend owns (never anything outside its key prefix)."""

    async def cleanup_expired(self) -> int:
        """Remove expired entries and dead index members; the number of entries removed."""

    async def add_counters(self, hits: int, misses: int) -> None:
        """Add this process's hit/miss counts to the backend's shared totals."""

    async def stats(self) -> BackendStats:
        """Entry count, memory estimate, oldest/newest entry and shared counters."""

    async def close(self) -> None:
        """Release connections and background work; the backend is not used afterwards."""


# --- optional: a synchronous fast path ----------------------------------------------------


class Deferred(enum.Enum):
    """The type of DEFERRED (an enum, so that type checkers narrow `is DEFERRED`)."""

    DEFERRED = "deferred"


DEFERRED: Final = Deferred.DEFERRED
"""A `*_nowait` method's answer when it cannot answer without I/O: await the async method."""


@runtime_checkable
class NowaitReads(Protocol):
    """Optional: a backend that can answer reads without awaiting.

    The service looks for it once, when it is built, and then calls `get_nowait` before
    (and usually instead of) `get`: a coroutine costs more than a memory hit itself.
    `get_nowait` must answer exactly as `get` would, or return DEFERRED to have `get`
    awaited.
    """

    def get_nowait(self, key: str) -> bytes | Deferred | None:
        """The stored bytes of a live entry, None, or DEFERRED (ask `get`)."""


@runtime_checkable
class NowaitWrites(Protocol):
    """Optional: a backend that can store without awaiting; the twin of NowaitReads."""

    def set_nowait(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> bool | Deferred:
        """What `set` would return, or DEFERRED (then nothing was stored: await `set`)."""


# --- optional: how many entries each namespace and tag holds -----------------------------


@dataclass(frozen=True)
class LabelCounts:
    """The namespaces and tags holding the most entries, largest first, at most `limit` of
    each. `complete` is False when the backend stopped looking before it had seen every label
    (it bounds its work), so that a label missing from the lists may still hold entries."""

    namespaces: tuple[tuple[str, int], ...]
    tags: tuple[tuple[str, int], ...]
    complete: bool = True


@runtime_checkable
class LabelCounting(Protocol):
    """Optional: a backend that can count its entries per namespace and per tag from its
    indexes, in bounded work (the admin dashboard shows the counts when it can)."""

    async def label_counts(self, limit: int) -> LabelCounts:
        """The `limit` largest namespaces and tags (see LabelCounts)."""


def top_labels(sizes: Iterable[tuple[str, int]], limit: int) -> tuple[tuple[str, int], ...]:
    """The `limit` largest (label, size) pairs, largest first, ties in label order."""
    return tuple(heapq.nsmallest(limit, sizes, key=lambda pair: (-pair[1], pair[0])))


# --- optional: batches --------------------------------------------------------------------


@runtime_checkable
class BatchBackend(Protocol):
    """Optional: a backend that reads, writes and deletes many keys in one call.

    Every backend of this package is one; the service loops over the single-key methods for
    a backend that is not. Each method means exactly what the single-key method does for each
    key (the contract suite checks it: tests/contract/test_batch.py), in one round trip per
    node where the store is remote. The keys given are distinct.
    """

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """What `get` returns for each key, in the order of `keys`."""

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> list[bool]:
        """`set` of each (key, value) with the same TTL, labels and token; what each returned."""

    async def delete_many(self, keys: Sequence[str]) -> int:
        """`delete` of each key; the number of live entries removed."""


# --- optional: reads that say how long an entry has left -----------------------------------


@runtime_checkable
class TTLReads(Protocol):
    """Optional: reads that also say how many seconds a live entry has left.

    Early refresh (`get_or_set_async(..., refresh_ahead=...)`) needs it; the memory, Redis
    and hybrid backends have it. The seconds are measured on the backend's own clock, so the
    service needs none. None for the seconds left: the entry never expires, or this tier
    cannot tell when it does (a hybrid L1 entry capped by `l1_max_ttl`); either way it is
    not refreshed ahead from this read.
    """

    async def get_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        """A live entry's bytes and seconds left, or None; marks it used, as `get` does."""

    def get_with_ttl_nowait(self, key: str) -> tuple[bytes, float | None] | Deferred | None:
        """`get_with_ttl` without a coroutine, or DEFERRED (then await `get_with_ttl`)."""
