"""In-process backend: an LRU of encoded values with TTL, and namespace and tag indexes.

The LRU is bounded by entries and, optionally, by bytes (the estimate `stats` reports, kept
as a running total, so that the bound costs one comparison per write). Values are stored as
the codec's bytes, so nothing handed out aliases the cache's state. Invalidation by namespace
or tag costs O(entries removed) thanks to the indexes; patterns scan the keys, skipping those
outside the pattern's literal prefix before matching.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from ..keys import pattern_covers
from ..patterns import GlobPattern
from .base import BackendStats, FillToken, LabelCounts
from .fill_log import InvalidationLog
from .memory_entries import Entry, Refusals, entry_size, new_entry, sized
from .memory_labels import LabelIndex

__all__ = ["MemoryBackend"]

Clock = Callable[[], float]

_LOG_SIZE = 16_384
# Keys a pattern scan matches before it lets other tasks run: about a millisecond of work.
_SCAN_CHUNK = 1000


class MemoryBackend:
    """LRU + TTL storage in this process, bounded to `max_items` entries and, when
    `max_memory_bytes` is given, to that many bytes (by the estimate `stats` reports).

    Past either bound the least recently used entries are evicted; a value whose entry alone
    exceeds `max_memory_bytes` is not stored (logged, and counted in `stats().errors`).
    """

    layer: Final = "memory"
    """The name events give this tier (`events.Layer`)."""

    def __init__(
        self,
        max_items: int = 1000,
        *,
        max_memory_bytes: int | None = None,
        clock: Clock = time.time,
    ) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        if max_memory_bytes is not None and max_memory_bytes < 1:
            raise ValueError("max_memory_bytes must be at least 1, or None for no byte bound")
        self.max_items = max_items
        self.max_memory_bytes = max_memory_bytes
        self._byte_limit: float = math.inf if max_memory_bytes is None else max_memory_bytes
        self._refusals = Refusals(max_memory_bytes)
        self._clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._labels = LabelIndex()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        # Recent invalidations, so a fill that started before one of them is not stored.
        self._log = InvalidationLog(_LOG_SIZE)

    @property
    def refused(self) -> int:
        """Values not stored because each alone is bigger than `max_memory_bytes`."""
        return self._refusals.count

    # --- reads ---------------------------------------------------------------------------

    def _live(self, key: str) -> Entry | None:
        """The entry under `key` unless it has expired (then it is removed)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= self._clock():
            self._remove(key)
            return None
        return entry

    async def get(self, key: str) -> bytes | None:
        """The stored bytes of a live entry, or None; marks it most recently used."""
        return self.get_nowait(key)

    def get_nowait(self, key: str) -> bytes | None:
        """`get` without a coroutine: the service's fast path (NowaitReads)."""
        entry = self._live(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.value

    def entry_nowait(self, key: str) -> Entry | None:
        """The live entry under `key`, marked most recently used (its times are read by
        `get_with_ttl` here and in a hybrid's L1)."""
        entry = self._live(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    async def get_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        """The stored bytes and the seconds they have left (None: forever), or None."""
        return self.get_with_ttl_nowait(key)

    def get_with_ttl_nowait(self, key: str) -> tuple[bytes, float | None] | None:
        """`get_with_ttl` without a coroutine (TTLReads)."""
        entry = self.entry_nowait(key)
        if entry is None:
            return None
        expires_at = entry.expires_at
        return entry.value, None if expires_at is None else expires_at - self._clock()

    async def exists(self, key: str) -> bool:
        """Whether a live entry is stored under `key`."""
        return self._live(key) is not None

    # --- writes --------------------------------------------------------------------------

    async def fill_token(self) -> FillToken:
        """A token for `set(..., fill=token)`: the current invalidation sequence number."""
        return self._log.seq

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
        """Store `value` for `ttl` seconds (None: forever); False if `fill` is stale."""
        return self.set_nowait(key, value, ttl=ttl, namespace=namespace, tags=tags, fill=fill)

    def set_nowait(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> bool:
        """`set` without a coroutine: the service's fast path (NowaitWrites)."""
        if type(tags) is not tuple:
            tags = tuple(tags)
        if fill is not None and self._log.covers_since(fill, key, namespace, tags):
            return False
        now = self._clock()
        expires_at = None if ttl is None else now + ttl
        entry = self._entries.get(key)
        if entry is None or entry.namespace != namespace or entry.tags != tags:
            return self._insert(key, value, now, expires_at, namespace, tags)
        grown = self._bytes + len(value) - len(entry.value)
        if grown > self._byte_limit:  # past the byte bound: evict, or refuse the value
            return self._insert(key, value, now, expires_at, namespace, tags)
        # The common overwrite: the same labels, so the indexes stay as they are. The
        # outcome is that of _remove + _insert: new value and times, most recently used.
        self._bytes = grown
        entry.value, entry.created_at, entry.expires_at = sized(value), now, expires_at
        self._entries.move_to_end(key)
        return True

    def _insert(
        self,
        key: str,
        value: bytes,
        now: float,
        expires_at: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
    ) -> bool:
        """Store an entry as the most recently used, replacing any entry under `key`, and
        evict past the bounds; False (and nothing stored) if it alone exceeds the byte bound."""
        size = entry_size(key, len(value), namespace, tags)
        if key in self._entries:
            self._remove(key)  # even when refused: the old value must not outlive the write
        if size > self._byte_limit:
            self._refusals.refuse(key, size)
            return False
        self._entries[key] = new_entry(sized(value), now, expires_at, namespace, tags)
        self._bytes += size
        if namespace is not None or tags:
            self._labels.add(key, namespace, tags)
        while len(self._entries) > self.max_items or self._bytes > self._byte_limit:
            self._remove(next(iter(self._entries)))
        return True

    def _remove(self, key: str) -> Entry:
        entry = self._entries.pop(key)
        self._bytes -= entry.size(key)
        if entry.namespace is not None or entry.tags:
            self._labels.discard(key, entry.namespace, entry.tags)
        return entry

    def _remove_all(self, keys: Iterable[str]) -> int:
        now = self._clock()
        removed = 0
        for key in list(keys):
            if key in self._entries:
                removed += not self._remove(key).expired(now)
        return removed

    # --- batches (BatchBackend): the single-key paths, without a coroutine per key --------

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        get = self.get_nowait
        return [get(key) for key in keys]

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> list[bool]:
        tags = tuple(tags)
        put = self.set_nowait
        return [put(k, v, ttl=ttl, namespace=namespace, tags=tags, fill=fill) for k, v in items]

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Remove the entries; one invalidation (one log record) for the whole batch."""
        if not keys:
            return 0
        self._log.record(["k:" + key for key in keys])
        return self._remove_all(keys)

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        """Always granted: no other process shares this cache."""
        return "local"

    async def release_fill_lock(self, key: str, owner: str) -> None:
        """Nothing to release."""

    # --- invalidation --------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        """Remove one entry; True if a live one was removed."""
        self._log.record(("k:" + key,))
        return self._remove_all((key,)) == 1

    async def invalidate_namespace(self, namespace: str) -> int:
        """Remove the entries written with exactly this namespace; the number of live ones."""
        self._log.record(("n:" + namespace,))
        return self._remove_all(self._labels.in_namespace(namespace))

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Remove the entries carrying any of `tags`; the number of live ones."""
        wanted = frozenset(tags)
        self._log.record(["t:" + tag for tag in wanted])
        return self._remove_all(self._labels.tagged(wanted))

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        """Remove entries whose full key (or key within `namespace`) matches `pattern`.

        The keys are matched in chunks with a pause between them, so that a scan of a large
        cache does not hold up every other request of this process.
        """
        self._log.record_pattern(pattern, namespace)
        if namespace is not None:
            candidates: Iterable[str] = self._labels.in_namespace(namespace)
        else:
            candidates = self._entries
        keys = list(candidates)  # a snapshot: other tasks write between the chunks
        removed = 0
        for first in range(0, len(keys), _SCAN_CHUNK):
            if first:
                await asyncio.sleep(0)
            removed += self._remove_all(
                self._matching(keys[first : first + _SCAN_CHUNK], pattern, namespace)
            )
        return removed

    def _matching(self, keys: list[str], pattern: GlobPattern, namespace: str | None) -> list[str]:
        entries = self._entries
        return [
            key
            for key in keys
            if (entry := entries.get(key)) is not None
            and pattern_covers(pattern, namespace, key, entry.namespace)
        ]

    async def clear(self) -> int:
        """Remove every entry; the number of live ones."""
        self._log.record(("*",))
        return self._remove_all(self._entries)

    async def cleanup_expired(self) -> int:
        """Remove expired entries now; the number removed."""
        now = self._clock()
        expired = [key for key, entry in self._entries.items() if entry.expired(now)]
        for key in expired:
            self._remove(key)
        return len(expired)

    # --- statistics and lifecycle --------------------------------------------------------

    async def add_counters(self, hits: int, misses: int) -> None:
        """Add hit and miss counts to the totals `stats` reports."""
        self._hits += hits
        self._misses += misses

    async def stats(self) -> BackendStats:
        """Live entries, the memory estimate, oldest/newest entry and the counters."""
        await self.cleanup_expired()
        created = [entry.created_at for entry in self._entries.values()]
        return BackendStats(
            entries=len(created),
            memory_bytes=self._bytes,
            oldest=min(created, default=None),
            newest=max(created, default=None),
            hits=self._hits,
            misses=self._misses,
            errors=self.refused,
        )

    async def label_counts(self, limit: int) -> LabelCounts:
        """The `limit` largest namespaces and tags of the live entries (LabelCounting).

        Expired entries are left out, not removed: a dashboard's poll changes nothing (the
        sweep removes them, and `cleanup_expired` says how many)."""
        now = self._clock()
        expired = {key for key, entry in self._entries.items() if entry.expired(now)}
        return self._labels.counts(limit, expired)

    async def close(self) -> None:
        """Nothing to release; present for the backend protocol."""
        return None
