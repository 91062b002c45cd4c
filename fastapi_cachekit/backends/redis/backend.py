"""The Redis backend: the `CacheBackend` port's methods, each a GET or a script call.

Reads and `set` are here, as they are the hot path; the rest is delegated to the parts the
backend holds: batches (`batch`), invalidations (`invalidations`), `cleanup_expired`
(`sweep`) and `stats`. The design (key layout, invalidations, cluster shards, fill tokens,
memory, stats, faults) is described in the package's docstring (`backends/redis/__init__.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Final

from ...errors import ConfigurationError
from ...events import CacheEvent
from ...patterns import GlobPattern
from ...settings import CacheSettings
from ..base import DEFERRED, BackendStats, Deferred, FillToken, LabelCounts
from . import scripts as lua
from .batch import Announcing, RedisBatch
from .channel import Announcement, Channel, script_args
from .connection import RedisConnection, parse_url
from .faults import CircuitBreaker, Replayed
from .invalidations import RedisInvalidations
from .labels import label_counts
from .layout import (
    HEADER_SIZE,
    Envelope,
    Layout,
    RedisEntry,
    expiry,
    open_entry,
    open_envelope,
    pack_envelope,
    write_labels,
)
from .locks import release_lock, take_lock
from .ops import RedisOps
from .replay import Replays
from .stats import CorruptValues, add_counters, read_stats
from .sweep import Sweep
from .writes import SET_LABELS, set_wide, settle

__all__ = ["RedisBackend", "RedisEntry"]


class RedisBackend:
    """Cache storage in Redis (redis-py asyncio), shared by every process that uses it.

    `url`: redis://, rediss:// (TLS) or unix:// with user, password and db as usual; a
    redis+cluster:// or rediss+cluster:// URL (or `cluster=True`) connects to a Redis Cluster
    through that node. Connects lazily, on first use. `clock` gives the time TTLs are measured
    against (seconds since the epoch).
    """

    layer: Final = "redis"
    """The name events give this tier (`events.Layer`)."""

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "cachekit",
        cluster: bool = False,
        clock: Callable[[], float] = time.time,
        connect_timeout: float = 0.5,
        socket_timeout: float = 0.5,
        max_connections: int = 64,
        breaker_max_backoff: float = 5.0,
        max_pending_invalidations: int = 1000,
    ) -> None:
        url, cluster = parse_url(url, cluster)
        self.layout = Layout.of(key_prefix, cluster)
        self._clock = clock
        self.redis = RedisConnection(
            url,
            cluster=cluster,
            connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            max_connections=max_connections,
            breaker_max_backoff=breaker_max_backoff,
        )
        # On one node every entry key is this prefix + the full key ("" on a cluster).
        self._entry_prefix = "" if cluster else self.layout.shards[0].entry("")
        self._ops = RedisOps(self.redis, self.layout, self._now_ms)
        self._replays = Replays(max_pending_invalidations, self._ops.clear, self.redis.breaker)
        # Checked on every call before anything else: a plain attribute, no call.
        self._pending = self._replays.pending
        self._invalidations = RedisInvalidations(self.redis, self._ops, self._replays)
        self._sweep = Sweep(self.redis, self.layout, self._ops, self._now_ms)
        self._corrupt = CorruptValues()
        self._batch = RedisBatch(
            self.redis, self.layout, self._replays, clock, self._corrupt, self.set
        )

    @classmethod
    def from_settings(
        cls, settings: CacheSettings, clock: Callable[[], float] = time.time
    ) -> RedisBackend:
        """A backend configured by `settings` (redis_url, redis_cluster, timeouts, ...)."""
        if not settings.redis_url:
            raise ConfigurationError(
                "the Redis backend needs redis_url (set CACHEKIT_REDIS_URL, "
                "e.g. redis://localhost:6379/0)"
            )
        return cls(
            settings.redis_url,
            key_prefix=settings.key_prefix,
            cluster=settings.redis_cluster,
            clock=clock,
            connect_timeout=settings.redis_connect_timeout_seconds,
            socket_timeout=settings.redis_socket_timeout_seconds,
            max_connections=settings.redis_max_connections,
            breaker_max_backoff=settings.breaker_max_backoff_seconds,
            max_pending_invalidations=settings.max_pending_invalidations,
        )

    @property
    def cluster(self) -> bool:
        """Whether this backend talks to a Redis Cluster."""
        return self.redis.cluster

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker in front of Redis (its state, failures and rejections)."""
        return self.redis.breaker

    def channel(self, name: str, subscribe_url: str | None = None) -> Channel:
        """The pub/sub channel `name` under this backend's key prefix, published through this
        backend's connection and subscribed on its node (or on `subscribe_url`'s)."""
        return Channel(self.redis, f"{self.layout.base}{name}", subscribe_url)

    def on_replay(self, replayed: Replayed) -> None:
        """Have `replayed` awaited after each queued invalidation has been replayed, in order
        (a tier in front of Redis announces it then). It runs while other calls wait for the
        replay, so it must not call this backend's methods. One callback: a second replaces it.
        """
        self._replays.on_replay(replayed)

    def observe(self, emit: Callable[[CacheEvent], None] | None) -> None:
        """Tell `emit` (the service's observers; None: nobody) the breaker's changes and the
        replays of queued invalidations; the service calls this when its observers change."""
        self.redis.breaker.emit = emit
        self._replays.emit = emit

    def redis_answered(self) -> None:
        """Redis answered on another connection (a subscription): replay the queued
        invalidations now rather than after the breaker's back-off."""
        self._replays.answered()

    @property
    def pending_invalidations(self) -> int:
        """Invalidations waiting for Redis to answer again (a pending full clear counts 1)."""
        return len(self._pending)

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        found = await self._read(key)
        return None if found is None else found[0][found[1].value_offset :]

    async def get_entry(self, key: str) -> RedisEntry | None:
        """A live entry with its expiry (clock seconds; None: never), namespace and tags.

        Also one GET: for a tier in front of Redis that keeps the entry's remaining TTL and
        its index labels.
        """
        found = await self._read(key)
        if found is None:
            return None
        entry = open_entry(*found)
        if entry is None:
            self._corrupt(key)
        return entry

    async def get_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        """The stored bytes and the seconds they have left (None: forever), or None."""
        found = await self._read(key)
        if found is None:
            return None
        raw, envelope = found
        expires_ms = envelope.expires_ms
        left = None if math.isinf(expires_ms) else expires_ms / 1000.0 - self._clock()
        return raw[envelope.value_offset :], left

    def get_with_ttl_nowait(self, key: str) -> Deferred:
        """Always DEFERRED: every read is a round trip (TTLReads)."""
        return DEFERRED

    async def _read(self, key: str) -> tuple[bytes, Envelope] | None:
        if self._pending.size:
            await self._replays.replay()
        prefix = self._entry_prefix
        entry = prefix + key if prefix else self.layout.shard_of(key).entry(key)
        raw = await self.redis.command("GET", entry)
        if raw is None:
            return None
        envelope = open_envelope(raw)
        if envelope is None:
            self._corrupt(key)
            return None
        if envelope.expires_ms <= self._clock() * 1000.0:
            return None
        return raw, envelope

    async def exists(self, key: str) -> bool:
        if self._pending.size:
            await self._replays.replay()
        raw = await self.redis.get_header(self.layout.shard_of(key).entry(key), HEADER_SIZE)
        if not raw:
            return False
        envelope = open_envelope(raw, header_only=True)
        if envelope is None:
            self._corrupt(key)
            return False
        return envelope.expires_ms > self._now_ms()

    # --- writes --------------------------------------------------------------------------

    async def fill_token(self) -> FillToken:
        if self._pending.size:
            await self._replays.replay()
        return await self._ops.fill_token()

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
        announce: Announcement | None = None,
    ) -> bool:
        """Store an entry; `announce` is published with it, in the same script, if stored."""
        if self._pending.size:
            await self._replays.replay()
        now = self._clock()
        expires_ms, px = expiry(now, ttl)
        data = pack_envelope(value, now * 1000.0, expires_ms, namespace, tags)
        prefix = self._entry_prefix
        shard = self.layout.shards[0] if prefix else self.layout.shard_of(key)
        labels = write_labels(namespace, tags)
        token = b"" if fill is None else fill
        publish = script_args(announce)
        if len(labels) > SET_LABELS:
            return await set_wide(
                self.redis, shard, key, data, px, token, expires_ms, labels, publish
            )
        keys, args = lua.set_call(shard, key, data, px, token, labels, announce=publish)
        reply = await self.redis.script(lua.SET, keys, args)
        if reply.__class__ is list:  # the labels the old value had and this one dropped
            return await settle(self.redis, shard, key, reply)
        return bool(reply)

    # --- batches (BatchBackend; see `batch`) ---------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._batch.get_many(keys)

    async def get_entries(self, keys: Sequence[str]) -> list[RedisEntry | None]:
        """`get_entry` of each key, in one round trip (per node)."""
        return await self._batch.get_entries(keys)

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
        announce: Announcing | None = None,
    ) -> list[bool]:
        """`set` of each item, in one round trip per node; `announce`: see `RedisBatch`."""
        return await self._batch.set_many(
            items, ttl=ttl, namespace=namespace, tags=tags, fill=fill, announce=announce
        )

    # --- invalidation (see `invalidations`) --------------------------------------------

    async def delete(self, key: str, announce: Announcement | None = None) -> bool:
        """Delete `key` (an invalidation); `announce` is published once it is done."""
        return bool(await self._invalidations.delete(key, announce))

    async def delete_many(self, keys: Sequence[str], announce: Announcement | None = None) -> int:
        """`delete` of each key, the script calls pipelined, under one queued `Invalidation`
        for the batch (owed and replayed whole if Redis cannot be reached)."""
        return await self._invalidations.delete_many(keys, announce)

    async def invalidate_namespace(
        self, namespace: str, announce: Announcement | None = None
    ) -> int:
        return await self._invalidations.namespace(namespace, announce)

    async def invalidate_tags(
        self, tags: Sequence[str], announce: Announcement | None = None
    ) -> int:
        return await self._invalidations.tags(tags, announce)

    async def invalidate_pattern(
        self, pattern: GlobPattern, namespace: str | None, announce: Announcement | None = None
    ) -> int:
        return await self._invalidations.pattern(pattern, namespace, announce)

    async def clear(self, announce: Announcement | None = None) -> int:
        return await self._invalidations.clear(announce)

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        """SET NX PX on a lock key in the entry's shard; the lock expires by itself."""
        lock = self.layout.shard_of(key).lock(key)
        return await take_lock(self.redis, lock, max(1, math.ceil(ttl * 1000.0)))

    async def release_fill_lock(self, key: str, owner: str) -> None:
        await release_lock(self.redis, self.layout.shard_of(key).lock(key), owner)

    async def cleanup_expired(self) -> int:
        """Remove expired entries and dead index members, unless another process is at it
        (see `sweep`: one process at a time does the work; the others return 0)."""
        await self._replays.replay()
        return await self._sweep.run()

    # --- statistics and lifecycle --------------------------------------------------------

    async def add_counters(self, hits: int, misses: int) -> None:
        if hits or misses:
            await add_counters(self.redis, self.layout, hits, misses)

    async def stats(self) -> BackendStats:
        """Counts for this key prefix (see `stats`); `errors` counts the values that did not
        decode (the service counts the failed calls it sees)."""
        await self._replays.replay()
        errors, pending = self._corrupt.count, len(self._pending)
        return await read_stats(self.redis, self.layout, self._now_ms(), errors, pending)

    async def label_counts(self, limit: int) -> LabelCounts:
        """The `limit` largest namespaces and tags, from the indexes (see `labels`)."""
        return await label_counts(self.redis, self.layout, self._now_ms(), limit)

    async def close(self) -> None:
        await self._replays.close()
        await self.redis.close()

    # --- plumbing ------------------------------------------------------------------------

    def _now_ms(self) -> float:
        return self._clock() * 1000.0
