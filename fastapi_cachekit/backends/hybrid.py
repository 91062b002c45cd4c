"""The hybrid backend: a memory tier (L1) in each process in front of Redis (L2).

Reads try L1, then L2, and promote L2 hits into L1 for the rest of their TTL, capped by
`l1_max_ttl`. Writes go to L2, then to this process's L1; invalidations too
(`hybrid_invalidation`). Both are announced on a Redis pub/sub channel (`hybrid_channel`) so
that every other process drops the entries from its L1 (coherence within the channel's
latency; the cap bounds staleness even if a message is lost). A process does not hear its own
announcements (see `redis.channel`): its own L1 is changed by the call itself.

An announcement must not come before L2 is changed, or another process could promote the old
entry again. A write's travels with it: the SET script PUBLISHes it in the same atomic step,
so a write costs the Redis backend's one round trip. A batch of writes is announced by each
of its script calls (one per shard and chunk), naming its keys, once it stored any of them
(a key whose fill was refused may be named too: other L1s then drop a copy they could have
kept); a batch L2 failed partway is deleted.

L1 is used only while this process's subscription is live (see `hybrid_listener`): confirmed
before the first operation returns, and heard from within `l1_liveness` seconds (a quiet
channel is pinged every `heartbeat` seconds). When it drops, or a stalled Redis leaves it
silent past the bound, L1 is cleared and bypassed (reads go to L2) until it answers again. A
message that is not an announcement is counted (in `malformed_messages`, and in the stats'
errors) and ignored.

Long because it is the facade of the whole backend protocol (over thirty small public members);
the batches stay here, as they share the coherence flag and promotion with the hot reads.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from ..errors import BackendError
from ..events import CacheEvent
from ..patterns import GlobPattern
from ..settings import CacheSettings
from .base import DEFERRED, BackendStats, Deferred, FillToken, LabelCounts
from .hybrid_channel import Announcer
from .hybrid_invalidation import HybridInvalidations
from .hybrid_listener import ChannelListener
from .memory import MemoryBackend
from .redis import Announcement, CircuitBreaker, Invalidation, RedisBackend, RedisEntry

__all__ = ["HybridBackend"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

# An L1 lifetime this close to the cap was capped (float sums may lose the last digit).
_CAP_TOLERANCE = 1e-6


class HybridBackend:
    """Memory L1 per process, Redis L2 shared, kept coherent through pub/sub.

    `pubsub_url` subscribes on another node than L2's; `l1_liveness` is how long the channel
    may stay silent before L1 is bypassed, `heartbeat` how long it may be quiet before it is
    pinged (shorter than `l1_liveness`); `monotonic` measures both.
    """

    layer: Final = "l2"
    """The name events give a read Redis answered (`events.Layer`)..."""
    nowait_layer: Final = "l1"
    """...and one this process's memory tier answered (the synchronous fast path)."""

    def __init__(
        self,
        l2: RedisBackend,
        *,
        max_items: int = 1000,
        max_memory_bytes: int | None = None,
        l1_max_ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
        pubsub_url: str | None = None,
        l1_liveness: float = 3.0,
        heartbeat: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.l1 = MemoryBackend(max_items, max_memory_bytes=max_memory_bytes, clock=clock)
        self._clock = clock
        self.l2 = l2
        self.l1_max_ttl = l1_max_ttl
        channel = l2.channel("invalidations", subscribe_url=pubsub_url)
        self.channel = channel.name
        """The channel's name: this process publishes on `{channel}:{sender}`, and hears every
        `{channel}:{id}` with an id of `SENDER_LENGTH` characters but its own."""
        self._announcer = Announcer(channel, monotonic)
        self._invalidations = HybridInvalidations(self.l1, l2, self._announcer)
        self._listener = ChannelListener(
            channel,
            on_message=self._apply,
            on_live=self._live,
            on_heard=self._redis_answered,
            on_stopped=self._listener_stopped,
            heartbeat=heartbeat,
            liveness=l1_liveness,
            monotonic=monotonic,
        )
        self._coherent = False
        # Queued invalidations are announced once replayed: when they failed, the attempt to
        # announce them failed too (the breaker was open), and other L1s still hold them.
        l2.on_replay(self._announcer.publish)

    @classmethod
    def from_settings(
        cls, settings: CacheSettings, clock: Callable[[], float] = time.time
    ) -> HybridBackend:
        """A hybrid backend configured by `settings` (Redis settings plus the L1 size and cap)."""
        return cls(
            RedisBackend.from_settings(settings, clock=clock),
            max_items=settings.max_memory_items,
            max_memory_bytes=settings.max_memory_bytes,
            l1_max_ttl=settings.l1_max_ttl_seconds,
            clock=clock,
            l1_liveness=settings.l1_liveness_seconds,
            heartbeat=settings.l1_liveness_seconds / 3,
        )

    def observe(self, emit: Callable[[CacheEvent], None] | None) -> None:
        """See `RedisBackend.observe`: L2's breaker and replays."""
        self.l2.observe(emit)

    @property
    def coherent(self) -> bool:
        """Whether L1 is in use: the invalidation channel is subscribed and live."""
        return self._coherent

    @property
    def malformed_messages(self) -> int:
        """Messages on the channel that were not announcements (ignored)."""
        return self._announcer.malformed

    @property
    def pending_invalidations(self) -> int:
        """This process's invalidations waiting for Redis to answer again."""
        return self.l2.pending_invalidations

    @property
    def breaker(self) -> CircuitBreaker:
        """L2's circuit breaker."""
        return self.l2.breaker

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value = self.get_nowait(key)
        if value is not DEFERRED:
            return value
        entry = await self._promote(key)
        return None if entry is None else entry.value

    def get_nowait(self, key: str) -> bytes | Deferred:
        """An L1 hit without a coroutine (NowaitReads); anything else is left to `get`."""
        if self._coherent:
            value = self.l1.get_nowait(key)
            if value is not None:
                return value
        return DEFERRED

    async def get_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        found = self.get_with_ttl_nowait(key)
        if found is not DEFERRED:
            return found
        entry = await self._promote(key)
        if entry is None:
            return None
        left = None if entry.expires_at is None else entry.expires_at - self._clock()
        return entry.value, left

    def get_with_ttl_nowait(self, key: str) -> tuple[bytes, float | None] | Deferred:
        """An L1 hit and its seconds left without a coroutine (TTLReads); else DEFERRED.

        An L1 entry capped by `l1_max_ttl` expires before the entry in Redis, at a time
        unknown here: its seconds left are None (not due for an early refresh). Once the
        cap drops it, the next read promotes the entry again with its true expiry.
        """
        if self._coherent:
            entry = self.l1.entry_nowait(key)
            if entry is not None and entry.expires_at is not None:
                lifetime = entry.expires_at - entry.created_at
                capped = lifetime >= self.l1_max_ttl - _CAP_TOLERANCE
                return entry.value, None if capped else entry.expires_at - self._clock()
        return DEFERRED

    async def _promote(self, key: str) -> RedisEntry | None:
        """The entry in L2 (None: a miss), copied into L1 for the rest of its TTL, capped."""
        await self._listener.ensure_started()
        token = await self.l1.fill_token()
        entry = await self.l2.get_entry(key)
        if entry is None:
            return None
        await self._promote_entry(key, entry, token)
        return entry

    async def _promote_entry(self, key: str, entry: RedisEntry, token: FillToken) -> None:
        """Copy an L2 entry into L1 for the rest of its TTL (capped), unless an invalidation
        since `token` (taken before the L2 read) refuses it."""
        if self._coherent:
            remaining = None if entry.expires_at is None else entry.expires_at - self._clock()
            ttl = self._l1_ttl(remaining)
            if ttl > 0:
                await self.l1.set(
                    key,
                    entry.value,
                    ttl=ttl,
                    namespace=entry.namespace,
                    tags=entry.tags,
                    fill=token,
                )

    async def exists(self, key: str) -> bool:
        if self._coherent and await self.l1.exists(key):
            return True
        return await self.l2.exists(key)

    # --- writes --------------------------------------------------------------------------

    async def fill_token(self) -> FillToken:
        await self._listener.ensure_started()
        return await self.l2.fill_token()

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
        await self._listener.ensure_started()
        token = await self.l1.fill_token()
        announce = self._writes((key,))
        stored = await self.l2.set(
            key, value, ttl=ttl, namespace=namespace, tags=tags, fill=fill, announce=announce
        )
        if stored and self._coherent:
            await self.l1.set(
                key, value, ttl=self._l1_ttl(ttl), namespace=namespace, tags=tags, fill=token
            )
        return stored

    # --- batches (BatchBackend): the rules of get, set and delete, one L2 call each -------

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """L1 first; the rest from L2 in one call, promoted as `get` promotes."""
        found: list[bytes | None] = [None] * len(keys)
        if self._coherent:
            found = await self.l1.get_many(keys)
        rest = [i for i, value in enumerate(found) if value is None]
        if not rest:
            return found
        await self._listener.ensure_started()
        token = await self.l1.fill_token()
        entries = await self.l2.get_entries([keys[i] for i in rest])
        for i, entry in zip(rest, entries, strict=True):
            if entry is not None:
                found[i] = entry.value
                await self._promote_entry(keys[i], entry, token)
        return found

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> list[bool]:
        """L2, each of its script calls announcing its keys once it stored any, then this
        process's L1 (as `set`).

        When L2 fails (or the call is cancelled) some of its SETs may have run all the same:
        the batch's keys are deleted as `delete_many` deletes them, so no L1 keeps a copy
        older than L2's (an invalidation Redis cannot take now is queued, and announced once
        replayed), and the failure is raised.
        """
        await self._listener.ensure_started()
        token = await self.l1.fill_token()
        try:
            stored = await self.l2.set_many(
                items, ttl=ttl, namespace=namespace, tags=tags, fill=fill, announce=self._writes
            )
        except BaseException:
            with contextlib.suppress(BackendError):  # queued: the failure raised is L2's
                await self._invalidations.delete_many([key for key, _ in items])
            raise
        written = [item for item, ok in zip(items, stored, strict=True) if ok]
        if written and self._coherent:
            l1_ttl = self._l1_ttl(ttl)
            await self.l1.set_many(written, ttl=l1_ttl, namespace=namespace, tags=tags, fill=token)
        return stored

    def _writes(self, keys: Sequence[str]) -> Announcement:
        """The announcement of writes of `keys`, for the L2 call that stores them."""
        return self._announcer.announcement(Invalidation("key", tuple(keys)))

    async def delete_many(self, keys: Sequence[str]) -> int:
        """As `delete`, with one announcement for the batch."""
        return await self._invalidations.delete_many(keys)

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        return await self.l2.acquire_fill_lock(key, ttl)

    async def release_fill_lock(self, key: str, owner: str) -> None:
        await self.l2.release_fill_lock(key, owner)

    # --- invalidation (`hybrid_invalidation`: L2 with its announcement, then L1) ----------

    async def delete(self, key: str) -> bool:
        return await self._invalidations.delete(key)

    async def invalidate_namespace(self, namespace: str) -> int:
        return await self._invalidations.invalidate_namespace(namespace)

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        return await self._invalidations.invalidate_tags(tags)

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        return await self._invalidations.invalidate_pattern(pattern, namespace)

    async def clear(self) -> int:
        return await self._invalidations.clear()

    async def cleanup_expired(self) -> int:
        await self.l1.cleanup_expired()
        return await self.l2.cleanup_expired()

    # --- statistics and lifecycle --------------------------------------------------------

    async def add_counters(self, hits: int, misses: int) -> None:
        await self.l2.add_counters(hits, misses)

    async def stats(self) -> BackendStats:
        stats = await self.l2.stats()
        errors = stats.errors + self.malformed_messages + self.l1.refused
        return dataclasses.replace(stats, errors=errors)

    async def label_counts(self, limit: int) -> LabelCounts:
        """L2's counts: every process's entries (L1 holds copies of some of them)."""
        return await self.l2.label_counts(limit)

    async def close(self) -> None:
        """Stop the listener (whatever it died of, if it did), close its connection and L2."""
        self._coherent = False
        try:
            await self._listener.close()
        finally:
            await self.l2.close()

    # --- the invalidation channel --------------------------------------------------------

    def _l1_ttl(self, ttl: float | None) -> float:
        return self.l1_max_ttl if ttl is None else min(ttl, self.l1_max_ttl)

    def _redis_answered(self) -> None:
        # Redis answers again: this process's queued invalidations go out now, not after the
        # breaker's back-off, so that the other processes hear of them at once.
        if self.l2.pending_invalidations:
            self.l2.redis_answered()

    def _listener_stopped(self) -> None:
        # Its loop has ended, say: the memory tier is neither read nor filled until a new
        # listener hears the channel (and clears it then).
        self._coherent = False

    async def _live(self, live: bool) -> None:
        """The channel became live (subscribed, heard from) or stopped being so."""
        if live:
            # Messages may have been missed while it was not: start L1 afresh.
            await self.l1.clear()
            self._coherent = True
        else:
            self._coherent = False  # no promotion lands from now on, and L1 is not read
            await self.l1.clear()
            logger.warning("memory tier bypassed until the invalidation channel answers")

    async def _apply(self, data: bytes) -> None:
        """Apply another process's invalidation, heard on the channel, to this process's L1."""
        done = self._announcer.heard(data)
        if done is not None:
            await self._invalidations.drop_from_l1(done)
