"""The hybrid backend: a memory tier (L1) in each process in front of Redis (L2).

Reads try L1, then L2, and promote L2 hits into L1 for the rest of their TTL, capped by
`l1_max_ttl`. Writes go to L2, then to this process's L1. Invalidations go to L2 first and
then to this process's L1, so that a promotion whose L2 read raced the invalidation is refused
by L1's fill check (its token was taken before the L1 invalidation): once the call returns,
this process never serves the old entry. Both are then announced on a Redis pub/sub channel so
that every other process drops the entries from its L1 (coherence within the channel's
latency; the cap bounds staleness even if a message is lost). An invalidation that could not
reach Redis is dropped from this process's L1 at once, queued by the Redis backend (which
replays it as soon as Redis answers again), and announced when it has been replayed: the
announcement must not come before L2 is changed, or another process could promote the old
entry again.

L1 is used only while this process's subscription is live: subscribed (confirmed before the
first operation returns) and heard from within `l1_liveness` seconds. A quiet channel is
pinged every `heartbeat` seconds; a stalled Redis leaves the connection open but answers
nothing, so after `l1_liveness` seconds without a message or a pong L1 is cleared and bypassed
(reads go to L2) until the channel answers again. A dropped channel does the same at once. A
message that is not an announcement is counted (in `malformed_messages`, and in the stats'
errors) and ignored; a listener stopped by any error starts again after a back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ..errors import BackendError
from ..keys import GlobPattern
from ..settings import CacheSettings
from .base import DEFERRED, BackendStats, Deferred, FillToken
from .hybrid_channel import MalformedMessage, decode, encode
from .memory import MemoryBackend
from .redis import Invalidation, RedisBackend

__all__ = ["HybridBackend"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

T = TypeVar("T")

_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0
_MALFORMED_LOG_INTERVAL = 60.0


class HybridBackend:
    """Memory L1 per process, Redis L2 shared, kept coherent through pub/sub."""

    def __init__(
        self,
        l2: RedisBackend,
        *,
        max_items: int = 1000,
        l1_max_ttl: float = 60.0,
        clock: Callable[[], float] = time.time,
        pubsub_url: str | None = None,
        l1_liveness: float = 3.0,
        heartbeat: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if heartbeat >= l1_liveness:
            raise ValueError(
                f"heartbeat ({heartbeat}s) must be shorter than l1_liveness ({l1_liveness}s), "
                "or a live channel would be taken for a dead one"
            )
        self.l1 = MemoryBackend(max_items, clock=clock)
        self._clock = clock
        self.l2 = l2
        self.l1_max_ttl = l1_max_ttl
        self.l1_liveness = l1_liveness
        self.heartbeat = heartbeat
        self._monotonic = monotonic
        self.channel = f"{l2.layout.base}invalidations"
        self._pubsub_url = pubsub_url or l2.redis.url
        self._source = uuid.uuid4().hex
        self._coherent = False
        self._last_heard = 0.0
        self.malformed_messages = 0
        """Messages on the channel that were not announcements (ignored)."""
        self._last_malformed_log = -_MALFORMED_LOG_INTERVAL
        self._subscribed: asyncio.Future[None] | None = None
        self._listener: asyncio.Task[None] | None = None
        self._client: Redis | None = None
        # Queued invalidations are announced once replayed: when they failed, the attempt to
        # announce them failed too (the breaker was open), and other L1s still hold them.
        l2.on_replayed = self._announce

    @classmethod
    def from_settings(
        cls, settings: CacheSettings, clock: Callable[[], float] = time.time
    ) -> HybridBackend:
        """A hybrid backend configured by `settings` (Redis settings plus the L1 size and cap)."""
        return cls(
            RedisBackend.from_settings(settings, clock=clock),
            max_items=settings.max_memory_items,
            l1_max_ttl=settings.l1_max_ttl_seconds,
            clock=clock,
            l1_liveness=settings.l1_liveness_seconds,
            heartbeat=settings.l1_liveness_seconds / 3,
        )

    @property
    def coherent(self) -> bool:
        """Whether L1 is in use: the invalidation channel is subscribed and live."""
        return self._coherent

    @property
    def pending_invalidations(self) -> int:
        """This process's invalidations waiting for Redis to answer again."""
        return self.l2.pending_invalidations

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        if self._coherent:
            value = self.l1.get_nowait(key)
            if value is not None:
                return value
        elif self._listener is None:
            await self._listen()
        return await self._promote(key)

    def get_nowait(self, key: str) -> bytes | Deferred:
        """An L1 hit without a coroutine (NowaitReads); anything else is left to `get`."""
        if self._coherent:
            value = self.l1.get_nowait(key)
            if value is not None:
                return value
        return DEFERRED

    async def _promote(self, key: str) -> bytes | None:
        token = await self.l1.fill_token()
        entry = await self.l2.get_entry(key)
        if entry is None:
            return None
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
        return entry.value

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
        stored = await self.l2.set(key, value, ttl=ttl, namespace=namespace, tags=tags, fill=fill)
        if stored:
            await self._announce(Invalidation("key", (key,)))
            if self._coherent:
                await self.l1.set(
                    key, value, ttl=self._l1_ttl(ttl), namespace=namespace, tags=tags, fill=token
                )
        return stored

    async def acquire_fill_lock(self, key: str, ttl: float) -> str | None:
        return await self.l2.acquire_fill_lock(key, ttl)

    async def release_fill_lock(self, key: str, owner: str) -> None:
        await self.l2.release_fill_lock(key, owner)

    # --- invalidation --------------------------------------------------------------------

    async def delete(self, key: str) -> bool:
        return await self._invalidate(Invalidation("key", (key,)), self.l2.delete(key))

    async def invalidate_namespace(self, namespace: str) -> int:
        return await self._invalidate(
            Invalidation("namespace", (namespace,)), self.l2.invalidate_namespace(namespace)
        )

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        return await self._invalidate(
            Invalidation("tags", tuple(tags)), self.l2.invalidate_tags(tags)
        )

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        return await self._invalidate(
            Invalidation("pattern", (pattern.source,), namespace),
            self.l2.invalidate_pattern(pattern, namespace),
        )

    async def clear(self) -> int:
        return await self._invalidate(Invalidation("clear"), self.l2.clear())

    async def _invalidate(self, done: Invalidation, in_l2: Awaitable[T]) -> T:
        """L2 first, then L1 (whether L2 succeeded or queued it), then the announcement.

        In this order a reader of this process that missed L1 and read the old entry from L2
        took its fill token before the L1 invalidation, so L1 refuses its promotion; a reader
        that starts later reads L2 after the change.
        """
        try:
            return await in_l2
        finally:
            await self._drop_from_l1(done)
            await self._announce(done)

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
        return dataclasses.replace(stats, errors=stats.errors + self.malformed_messages)

    async def close(self) -> None:
        """Stop the listener (whatever it died of, if it did), close its connection and L2."""
        self._coherent = False
        listener, self._listener = self._listener, None
        try:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
        finally:
            client, self._client = self._client, None
            try:
                if client is not None:
                    await client.aclose()
            finally:
                await self.l2.close()

    # --- the invalidation channel --------------------------------------------------------

    def _l1_ttl(self, ttl: float | None) -> float:
        return self.l1_max_ttl if ttl is None else min(ttl, self.l1_max_ttl)

    async def _ensure_listening(self) -> None:
        if self._listener is None:
            await self._listen()

    async def _listen(self) -> None:
        """Start the listener and wait for its first subscription attempt to settle."""
        loop = asyncio.get_running_loop()
        self._subscribed = loop.create_future()
        self._listener = loop.create_task(self._listen_forever())
        await asyncio.shield(self._subscribed)

    async def _listen_forever(self) -> None:
        backoff = _RETRY_FIRST
        while True:
            try:
                async with self._subscription() as pubsub:
                    backoff = _RETRY_FIRST
                    await self._receive(pubsub)
            except Exception as exc:  # any error: L1 is bypassed, the listener starts again
                await self._went_incoherent(exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RETRY_MAX)

    @contextlib.asynccontextmanager
    async def _subscription(self) -> Any:
        if self._client is None:
            self._client = Redis.from_url(self._pubsub_url, socket_connect_timeout=0.5)
        try:
            async with self._client.pubsub() as pubsub:
                await pubsub.subscribe(self.channel)
                while (await pubsub.get_message(timeout=self.heartbeat)) is None:
                    pass  # the first message is the subscription's confirmation
                await self.l1.clear()  # messages may have been missed while unsubscribed
                self._heard()
                self._settle()
                yield pubsub
        finally:
            self._coherent = False
            self._settle()

    async def _receive(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(
                ignore_subscribe_messages=True, timeout=self.heartbeat
            )
            if message is None:  # a quiet channel: is Redis still there?
                await self._check_liveness()
                await pubsub.ping()
                continue
            self._heard()
            if message["type"] == "message":
                await self._apply(message["data"])

    def _heard(self) -> None:
        """The channel answered (a message or a pong): it is live, and L1 may be used."""
        self._last_heard = self._monotonic()
        self._coherent = True

    async def _check_liveness(self) -> None:
        # A stalled Redis keeps the connection open and delivers nothing: announcements may be
        # held up for as long, so L1 cannot be trusted past the bound.
        silent = self._monotonic() - self._last_heard
        if self._coherent and silent > self.l1_liveness:
            self._coherent = False
            await self.l1.clear()
            logger.warning(
                "cache invalidation channel silent for %.1fs; memory tier bypassed", silent
            )

    def _settle(self) -> None:
        if self._subscribed is not None and not self._subscribed.done():
            self._subscribed.set_result(None)

    async def _went_incoherent(self, exc: BaseException) -> None:
        # Messages may be lost from now on: nothing in L1 can be trusted until resubscribed.
        self._coherent = False
        if await self.l1.clear():
            logger.warning("cache invalidation channel lost (%r); memory tier bypassed", exc)

    async def _apply(self, data: bytes) -> None:
        """Apply another process's invalidation to this process's L1."""
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

    async def _announce(self, done: Invalidation) -> None:
        """Publish an invalidation for the other processes' L1s (`_apply` reads it).

        Publishes through the connection, not a backend method: this also runs inside the
        Redis backend's replay, which a backend method would wait for.
        """
        data = encode(self._source, done)
        try:
            await self.l2.redis.call(lambda client: client.publish(self.channel, data))
        except BackendError as exc:  # a lost announcement is bounded by l1_max_ttl
            logger.debug("could not announce an invalidation: %s", exc)
