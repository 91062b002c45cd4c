"""The hybrid backend: a memory tier (L1) in each process in front of Redis (L2).

Reads try L1, then L2, and promote L2 hits into L1 for the rest of their TTL, capped by
`l1_max_ttl`. Writes go to L2, then to this process's L1. Invalidations go to L2 first and
then to this process's L1, so that a promotion whose L2 read raced the invalidation is refused
by L1's fill check (its token was taken before the L1 invalidation): once the call returns,
this process never serves the old entry. Both are announced on a Redis pub/sub channel so that
every other process drops the entries from its L1 (coherence within the channel's latency; the
cap bounds staleness even if a message is lost).

The announcement must not come before L2 is changed, or another process could promote the old
entry again. It travels with the change: L2 is handed it (a redis `Announcement`) and the Lua
script that completes the change PUBLISHes it in the same atomic step (the SET of a write, the
DELETE of a key, the last DELETE of a batch or the last step of a namespace or tag
invalidation on one node), so a write costs the Redis backend's one round trip; where no
script completes the change alone (patterns, clears, a cluster's fan-out), L2 publishes it
right after. A batch of writes is announced once L2 has answered, naming the keys it stored:
any SET of the batch may be refused, so no one script call can be sure to carry it. An
invalidation that could not reach Redis is dropped from this process's L1 at once, queued by
the Redis backend (which replays it as soon as Redis answers again, without the
announcement), and announced by `on_replay` when it has been replayed. Every process hears
its own announcements too, and skips them by their first bytes, without decoding them.

L1 is used only while this process's subscription is live (see `hybrid_listener`): confirmed
before the first operation returns, and heard from within `l1_liveness` seconds (a quiet
channel is pinged every `heartbeat` seconds). When it drops, or a stalled Redis leaves it
silent past the bound, L1 is cleared and bypassed (reads go to L2) until it answers again. A
message that is not an announcement is counted (in `malformed_messages`, and in the stats'
errors) and ignored.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, TypeVar

from ..errors import BackendError
from ..events import CacheEvent
from ..patterns import GlobPattern
from ..settings import CacheSettings
from .base import DEFERRED, BackendStats, Deferred, FillToken, LabelCounts
from .hybrid_channel import MalformedMessage, decode, encode, sender_prefix
from .hybrid_listener import ChannelListener
from .memory import MemoryBackend
from .redis import Announcement, CircuitBreaker, Invalidation, RedisBackend, RedisEntry

__all__ = ["HybridBackend"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

T = TypeVar("T")

_MALFORMED_LOG_INTERVAL = 60.0
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
        self._monotonic = monotonic
        self._channel = l2.channel("invalidations", subscribe_url=pubsub_url)
        self.channel = self._channel.name
        self._listener = ChannelListener(
            self._channel,
            on_message=self._apply,
            on_live=self._live,
            on_heard=self._redis_answered,
            on_stopped=self._listener_stopped,
            heartbeat=heartbeat,
            liveness=l1_liveness,
            monotonic=monotonic,
        )
        self._source = uuid.uuid4().hex
        self._own = sender_prefix(self._source)
        self._coherent = False
        self.malformed_messages = 0
        """Messages on the channel that were not announcements (ignored)."""
        self._last_malformed_log = -_MALFORMED_LOG_INTERVAL
        # Queued invalidations are announced once replayed: when they failed, the attempt to
        # announce them failed too (the breaker was open), and other L1s still hold them.
        l2.on_replay(self._announce)

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
        if not self._coherent and not self._listener.started:
            await self._listener.start()
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
        await self._ensure_listening()
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
        await self._ensure_listening()
        token = await self.l1.fill_token()
        announce = self._announcement(Invalidation("key", (key,)))
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
        await self._ensure_listening()
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
        """L2, then one announcement naming the keys it stored (published after the pipeline,
        see the module docstring), then this process's L1 (as `set`)."""
        await self._ensure_listening()
        token = await self.l1.fill_token()
        stored = await self.l2.set_many(items, ttl=ttl, namespace=namespace, tags=tags, fill=fill)
        written = [item for item, ok in zip(items, stored, strict=True) if ok]
        if written:
            await self._announce(Invalidation("key", tuple(key for key, _ in written)))
            if self._coherent:
                l1_ttl = self._l1_ttl(ttl)
                await self.l1.set_many(
                    written, ttl=l1_ttl, namespace=namespace, tags=tags, fill=token
                )
        return stored

    async def delete_many(self, keys: Sequence[str]) -> int:
        """As `delete`, with one announcement for the batch (see `_invalidate`)."""
        if not keys:
            return 0
        done = Invalidation("key", tuple(keys))
        return await self._invalidate(done, self.l2.delete_many(keys, self._announcement(done)))

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        return await self.l2.acquire_fill_lock(key, ttl)

    async def release_fill_lock(self, key: str, owner: str) -> None:
        await self.l2.release_fill_lock(key, owner)

    # --- invalidation --------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        done = Invalidation("key", (key,))
        return await self._invalidate(done, self.l2.delete(key, self._announcement(done)))

    async def invalidate_namespace(self, namespace: str) -> int:
        done = Invalidation("namespace", (namespace,))
        return await self._invalidate(
            done, self.l2.invalidate_namespace(namespace, self._announcement(done))
        )

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        done = Invalidation("tags", tuple(tags))
        return await self._invalidate(done, self.l2.invalidate_tags(tags, self._announcement(done)))

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        done = Invalidation("pattern", (pattern.source,), namespace)
        return await self._invalidate(
            done, self.l2.invalidate_pattern(pattern, namespace, self._announcement(done))
        )

    async def clear(self) -> int:
        done = Invalidation("clear")
        return await self._invalidate(done, self.l2.clear(self._announcement(done)))

    async def _invalidate(self, done: Invalidation, in_l2: Awaitable[T]) -> T:
        """L2 first, with its announcement (when L2 succeeded: a queued invalidation is
        announced once replayed), then L1, whether L2 succeeded or queued it.

        In this order a reader of this process that missed L1 and read the old entry from L2
        took its fill token before the L1 invalidation, so L1 refuses its promotion; a reader
        that starts later reads L2 after the change.
        """
        try:
            return await in_l2
        finally:
            await self._drop_from_l1(done)

    async def _drop_from_l1(self, done: Invalidation) -> None:
        l1 = self.l1
        if done.kind == "key":
            for key in done.names:
                await l1.delete(key)
        elif done.kind == "namespace":
            await l1.invalidate_namespace(done.names[0])
        elif done.kind == "tags":
            await l1.invalidate_tags(done.names)
        elif done.kind == "pattern":
            await l1.invalidate_pattern(GlobPattern.compile(done.names[0]), done.namespace)
        else:
            await l1.clear()

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

    async def _ensure_listening(self) -> None:
        if not self._listener.started:
            await self._listener.start()

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
        """Apply another process's invalidation to this process's L1."""
        if data.startswith(self._own):  # its own announcements: applied already
            return
        try:
            sender, done = decode(data)
        except MalformedMessage as exc:
            self._malformed(data, exc)
            return
        if sender != self._source:
            await self._drop_from_l1(done)

    def _malformed(self, data: bytes, exc: MalformedMessage) -> None:
        self.malformed_messages += 1
        now = self._monotonic()
        if now - self._last_malformed_log >= _MALFORMED_LOG_INTERVAL:
            self._last_malformed_log = now
            logger.warning(
                "ignored a message on %s that is not a cache announcement (%s): %r",
                self.channel,
                exc,
                data[:100],
            )

    def _announcement(self, done: Invalidation) -> Announcement:
        """The announcement of `done`, for the L2 call that performs it to publish."""
        return self._channel.announcement(encode(self._source, done))

    async def _announce(self, done: Invalidation) -> None:
        """Publish an announcement no L2 call carried, for the other processes' L1s (`_apply`
        reads it): a replayed invalidation, a batch of writes.

        Publishes through the connection, not a backend method: this also runs inside the
        Redis backend's replay, which a backend method would wait for.
        """
        try:
            await self._channel.publish(encode(self._source, done))
        except BackendError as exc:  # a lost announcement is bounded by l1_max_ttl
            logger.debug("could not announce an invalidation: %s", exc)
