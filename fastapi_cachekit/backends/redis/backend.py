"""The Redis backend: a cache shared by every process, on one node or a Redis Cluster.

Design (the key layout is in `layout`, the scripts in `scripts`):

- Every key lives under "{key_prefix}:", so `clear`, patterns and stats never see other keys.
  Values are stored in an envelope: created_at and expires_at (ms) plus the entry's namespace
  and tags, then the value. `get`/`exists` treat an entry whose expires_at <= clock() as
  missing, so TTLs follow the injected clock exactly like the memory backend; Redis' own PX
  expiry is the backstop that frees memory. A value that is not an envelope is a miss (and an
  error in stats).
- A `get` is one GET; a `set` one EVALSHA (SCRIPT LOAD and EVALSHA again only when Redis
  answers NOSCRIPT; a write with more than `SET_LABELS` labels has the rest indexed first).
  Index updates happen in the same script as the write, and every script declares every key
  it touches (see `scripts`), so a slot moving between cluster nodes makes Redis answer ASK
  or TRYAGAIN before a script starts: a write is stored and indexed, or not at all.
- Invalidations rename the index (or, for `clear`, the entry list) to a drain key, so new
  writes go to a fresh one, and empty the drain `CHUNK` entries per script call, reading at
  most `LABEL_BUDGET` labels per call: removing an entry touches its value, the entry lists
  and that index, never its other indexes, which keep a dead member. Each removal reads the
  entry first, so a stale member never removes an entry that has since moved elsewhere.
  Patterns ZSCAN the entry list with MATCH and are filtered here with `GlobPattern.matches`,
  so results agree exactly with the memory backend.
- Cluster mode (`cluster=True` or a `redis+cluster://` / `rediss+cluster://` URL): keys are
  spread over a fixed set of shards, each one Redis hash tag; an entry and its shard's indexes
  share a slot, so one script still updates both atomically and a `get` is still one GET.
  Namespace, tag and pattern invalidations and `clear` fan out to every shard (concurrently),
  so they remove every matching entry written before the call began, wherever it lives.
- Fill tokens: every invalidation takes a number of the sequence "{prefix}:seq", which follows
  the server's clock (so a sequence Redis lost restarts above every token handed out), and
  records it against each label it invalidated in each shard it touches (see `scripts`); a
  `set(fill=token)` refuses to store if one of its labels (key, namespace, tags; patterns by
  their literal prefix; clear: always) was invalidated after the token, or if the shard's log
  no longer reaches back to it (lost, or more than `LOG_CAP` labels since). On one node the
  sequence is taken inside the invalidation's script, so the check is exact. On a cluster the
  number is taken first and then logged on the shards: exact for an invalidation that reached
  the shard before the write, and an invalidation that reaches it later removes the entry
  anyway.
- Memory without a sweeper: each write drops a few dead members of its shard's entry lists,
  registry and the indexes it writes to, and those expire with their longest-lived member.
  `cleanup_expired` prunes the rest (dead index members, entries Redis evicted, clears and
  invalidations a killed process left half done), in one process at a time (a SET NX PX lock).
- Stats: `entries` is exact for the clock (a ZCOUNT of live expiries; entries evicted by Redis
  count until the next cleanup); `memory_bytes` is what the kit holds: MEMORY USAGE of the
  shard's own keys, plus the live entries and the indexes (exact up to 16 of each, else a
  random sample of 16 times the count); oldest/newest look at most 32 entries in from either
  end of the creation index (approximate past that; creation times to the millisecond). Two
  round trips per shard, whatever the number of entries. `errors` counts values that did not
  decode (the service counts the failed calls it sees).
- Needs Redis >= 6.2 (ZRANDMEMBER, SPOP with a count, GETRANGE, Lua with cjson and struct).
- Faults: redis-py errors become BackendUnavailable/BackendError at this boundary. A circuit
  breaker fails calls fast after Redis is found unreachable and probes again after a back-off
  (doubling up to `breaker_max_backoff`). An invalidation that fails, for whatever reason, is
  queued and replayed, in order, before the next call is served once Redis answers (see
  `faults`), and by a background task as soon as Redis answers again, so that an idle process
  does not hold it back; the callback given to `on_replay` is told about each one after it has been
  replayed (the hybrid backend announces it to the other processes then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import NamedTuple

import orjson

from ...errors import BackendError, ConfigurationError
from ...patterns import GlobPattern
from ...settings import CacheSettings
from ..base import BackendStats, FillToken
from . import scripts as lua
from .channel import Channel
from .connection import Client, RedisConnection, parse_url
from .faults import CircuitBreaker, Invalidation, PendingInvalidations, Replayed
from .layout import (
    HEADER_SIZE,
    Envelope,
    Layout,
    NotAnEnvelope,
    live_value,
    open_envelope,
    pack_envelope,
)
from .ops import SET_LABELS, RedisOps

__all__ = ["RedisBackend", "RedisEntry"]


class RedisEntry(NamedTuple):
    """A stored entry as read by `RedisBackend.get_entry`."""

    value: bytes
    expires_at: float | None
    namespace: str | None
    tags: tuple[str, ...]


logger = logging.getLogger("fastapi_cachekit.redis")

_CLEANUP_LOCK_MS = 30_000
_CORRUPT_LOG_INTERVAL = 60.0
_FIRST_REPLAY_DELAY = 0.01


class RedisBackend:
    """Cache storage in Redis (redis-py asyncio), shared by every process that uses it.

    `url`: redis://, rediss:// (TLS) or unix:// with user, password and db as usual; a
    redis+cluster:// or rediss+cluster:// URL (or `cluster=True`) connects to a Redis Cluster
    through that node. Connects lazily, on first use. `clock` gives the time TTLs are measured
    against (seconds since the epoch).
    """

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
        if not key_prefix:
            raise ConfigurationError("key_prefix must not be empty (CACHEKIT_KEY_PREFIX)")
        if cluster and ("{" in key_prefix or "}" in key_prefix):
            raise ConfigurationError(
                f"key_prefix {key_prefix!r} contains a brace, which would change the cluster "
                "hash slot of every key: choose a prefix without '{' or '}'"
            )
        self.layout = Layout.cluster(key_prefix) if cluster else Layout.single(key_prefix)
        self._clock = clock
        self.redis = RedisConnection(
            url,
            cluster=cluster,
            connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            max_connections=max_connections,
            breaker_max_backoff=breaker_max_backoff,
        )
        self._ops = RedisOps(self.redis, self.layout, self._now_ms)
        # On one node every entry key is this prefix + the full key ("" on a cluster).
        self._entry_prefix = "" if cluster else self.layout.shards[0].entry("")
        self._pending = PendingInvalidations(max_pending_invalidations, self._replay_soon)
        self._replay_lock = asyncio.Lock()
        self._replayer: asyncio.Task[None] | None = None
        self._redis_answered = asyncio.Event()
        self._replay_loop: asyncio.AbstractEventLoop | None = None
        self._on_replayed: Replayed | None = None
        self._corrupt_values = 0
        self._last_corrupt_log = -_CORRUPT_LOG_INTERVAL

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
        self._on_replayed = replayed

    def redis_answered(self) -> None:
        """Redis answered on another connection (a subscription): replay the queued
        invalidations now rather than after the breaker's back-off."""
        self.breaker.probe_now()
        self._redis_answered.set()

    @property
    def pending_invalidations(self) -> int:
        """Invalidations waiting for Redis to answer again (a pending full clear counts 1)."""
        return len(self._pending)

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        # The hot path: one GET, then one call that reads the envelope.
        if self._pending.size:
            await self._replay()
        prefix = self._entry_prefix
        entry = prefix + key if prefix else self.layout.shard_of(key).entry(key)
        raw = await self.redis.command("GET", entry)
        if raw is None:
            return None
        try:
            return live_value(raw, self._clock() * 1000.0)
        except NotAnEnvelope:
            self._corrupt(key)
            return None

    async def get_entry(self, key: str) -> RedisEntry | None:
        """A live entry with its expiry (clock seconds; None: never), namespace and tags.

        Also one GET: for a tier in front of Redis that keeps the entry's remaining TTL and
        its index labels.
        """
        found = await self._read(key)
        if found is None:
            return None
        raw, envelope = found
        namespace, *tags = orjson.loads(raw[HEADER_SIZE : envelope.value_offset])
        expires = None if math.isinf(envelope.expires_ms) else envelope.expires_ms / 1000.0
        return RedisEntry(raw[envelope.value_offset :], expires, namespace or None, tuple(tags))

    async def _read(self, key: str) -> tuple[bytes, Envelope] | None:
        if self._pending.size:
            await self._replay()
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
            await self._replay()
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
            await self._replay()
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
    ) -> bool:
        if self._pending.size:
            await self._replay()
        now = self._clock()
        created_ms = now * 1000.0
        px: int | str = ""  # Redis' own expiry: none, or never before the envelope's
        if ttl is None:
            expires_ms = math.inf
        else:
            expires_ms, px = (now + ttl) * 1000.0, max(1, math.ceil(ttl * 1000.0))
        data = pack_envelope(value, created_ms, expires_ms, namespace, tags)
        prefix = self._entry_prefix
        shard = self.layout.shards[0] if prefix else self.layout.shard_of(key)
        # The labels go along, so that the script need not parse `data` for them; every key
        # the script touches is declared (see `scripts`).
        labels = [f"n:{namespace}"] if namespace else []
        labels += [f"t:{tag}" for tag in tags]
        token = b"" if fill is None else fill
        if len(labels) > SET_LABELS:
            return await self._ops.set_wide(shard, key, data, px, token, expires_ms, labels)
        index = shard.prefix
        keys = [shard.entry(key), *shard.write_keys, *(index + label for label in labels)]
        args = [data, px, token, key, b"", len(labels), *labels]
        reply = await self.redis.script(lua.SET, keys, args)
        if reply.__class__ is list:  # the labels the old value had and this one dropped
            await self._ops.unindex(shard, key, reply)
            return True
        return bool(reply)

    # --- invalidation --------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        return bool(
            await self._invalidation(Invalidation("key", (key,)), lambda: self._ops.delete(key))
        )

    async def invalidate_namespace(self, namespace: str) -> int:
        return await self._invalidation(
            Invalidation("namespace", (namespace,)),
            lambda: self._ops.invalidate_labels("n", (namespace,)),
        )

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        labels = tuple(dict.fromkeys(tags))
        if not labels:
            return 0
        return await self._invalidation(
            Invalidation("tags", labels), lambda: self._ops.invalidate_labels("t", labels)
        )

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        return await self._invalidation(
            Invalidation("pattern", (pattern.source,), namespace),
            lambda: self._ops.invalidate_pattern(pattern, namespace),
        )

    async def clear(self) -> int:
        try:
            await self._replay()
            return await self._ops.clear()
        except BackendError:
            self._pending.add_clear(self._ops.clear)
            raise

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        """SET NX PX on a lock key in the entry's shard; the lock expires by itself."""
        owner, lock = uuid.uuid4().hex, self.layout.shard_of(key).lock(key)
        px = max(1, math.ceil(ttl * 1000.0))
        taken = await self.redis.call(lambda client: client.set(lock, owner, nx=True, px=px))
        return owner if taken else None

    async def release_fill_lock(self, key: str, owner: str) -> None:
        await self.redis.script(lua.RELEASE_LOCK, [self.layout.shard_of(key).lock(key)], [owner])

    async def cleanup_expired(self) -> int:
        """Remove expired entries and dead index members, unless another process is at it.

        A short lock (SET NX PX) lets one process at a time do the work; the others return 0.
        """
        await self._replay()
        owner, lock = uuid.uuid4().hex, self.layout.cleanup_lock
        if not await self.redis.call(
            lambda client: client.set(lock, owner, nx=True, px=_CLEANUP_LOCK_MS)
        ):
            return 0
        try:
            return await self._ops.cleanup()
        finally:
            with contextlib.suppress(BackendError):  # the lock then expires by itself
                await self.redis.script(lua.RELEASE_LOCK, [lock], [owner])

    # --- statistics and lifecycle --------------------------------------------------------

    async def add_counters(self, hits: int, misses: int) -> None:
        if not hits and not misses:
            return
        key = self.layout.stats

        async def add(client: Client) -> None:
            pipe = client.pipeline(transaction=False)
            pipe.hincrby(key, "hits", hits)
            pipe.hincrby(key, "misses", misses)
            await pipe.execute()

        await self.redis.call(add)

    async def stats(self) -> BackendStats:
        """Counts for this key prefix; see the module docstring for what is approximate."""
        await self._replay()
        shards = await self._ops.shard_stats()
        key = self.layout.stats
        hits, misses = await self.redis.call(lambda client: client.hmget(key, "hits", "misses"))
        oldest = [row[2] for row in shards if row[2] is not None]
        newest = [row[3] for row in shards if row[3] is not None]
        return BackendStats(
            entries=sum(row[0] for row in shards),
            memory_bytes=sum(row[1] for row in shards),
            oldest=min(oldest) / 1000.0 if oldest else None,
            newest=max(newest) / 1000.0 if newest else None,
            hits=int(hits or 0),
            misses=int(misses or 0),
            errors=self._corrupt_values,  # the service counts the failed calls it sees
            pending_invalidations=len(self._pending),
        )

    async def close(self) -> None:
        replayer, self._replayer = self._replayer, None
        if replayer is not None and replayer.get_loop() is asyncio.get_running_loop():
            replayer.cancel()
            await asyncio.gather(replayer, return_exceptions=True)
        if len(self._pending):
            logger.warning(
                "closing the Redis backend with %d invalidations never sent", len(self._pending)
            )
        await self.redis.close()

    # --- plumbing ------------------------------------------------------------------------

    async def _invalidation(
        self, invalidation: Invalidation, run: Callable[[], Awaitable[int]]
    ) -> int:
        """Run an invalidation; when it fails, queue it for replay and raise.

        Any failure is queued, not only an unreachable Redis: a slot moving between cluster
        nodes, a script refused mid-failover or a timeout all leave the invalidation owed
        (bad input never gets this far: the service validates it first).
        """
        try:
            await self._replay()
            return await run()
        except BackendError:
            self._pending.add(invalidation, run)
            raise

    async def _replay(self) -> None:
        """Send the queued invalidations, in order, before anything else is served."""
        if not len(self._pending):
            return
        loop = asyncio.get_running_loop()
        if loop is not self._replay_loop:  # a lock serves the one loop it first waited on
            self._replay_loop, self._replay_lock = loop, asyncio.Lock()
        async with self._replay_lock:
            await self._pending.replay(self._ops.clear, self._on_replayed)

    def _replay_soon(self) -> None:
        """Start replaying the queue in the background (an invalidation was just queued)."""
        if self._replayer is None or self._replayer.done():
            self._redis_answered = asyncio.Event()  # an event serves the loop it first waited on
            self._replayer = asyncio.get_running_loop().create_task(self._replay_when_back())

    async def _replay_when_back(self) -> None:
        """Replay the queue once Redis answers: probe when the breaker allows (or when told
        that Redis answered), backing off while it does not."""
        delay = _FIRST_REPLAY_DELAY
        while len(self._pending):
            self._redis_answered.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._redis_answered.wait(), max(self.breaker.wait(), delay))
            try:
                await self._replay()
            except BackendError as exc:
                logger.debug("queued invalidations not replayed yet: %s", exc)
                delay = min(delay * 2, self.breaker.max_backoff)

    def _now_ms(self) -> float:
        return self._clock() * 1000.0

    def _corrupt(self, key: str) -> None:
        self._corrupt_values += 1
        now = time.monotonic()
        if now - self._last_corrupt_log >= _CORRUPT_LOG_INTERVAL:
            self._last_corrupt_log = now
            logger.warning("cache entry %r is not a cachekit value; treated as a miss", key)
