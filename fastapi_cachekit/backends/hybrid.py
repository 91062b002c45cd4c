"""The hybrid backend: a memory tier (L1) in each process in front of Redis (L2).

Reads try L1, then L2, and promote L2 hits into L1 for the rest of their TTL, capped by
`l1_max_ttl`. Writes and invalidations go to L2 first, then to this process's L1, then are
announced on a Redis pub/sub channel so that every other process drops the entries from its
L1 (coherence within the channel's latency; the cap bounds staleness even if a message is
lost). An invalidation that could not reach Redis is dropped from this process's L1 at once,
queued by the Redis backend, and announced when the Redis backend has replayed it: the
announcement must not come before L2 is changed, or another process could promote the old
entry again.

L1 is used only while this process is subscribed: the subscription is confirmed before the
first operation returns, and if the channel drops, L1 is cleared and bypassed (reads go to
L2) until the subscription is back. A promotion that races an invalidation message is
refused by L1's fill check, so an old L2 read cannot land in L1 after the message removing
it has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from ..errors import BackendError
from ..keys import GlobPattern
from ..settings import CacheSettings
from .base import DEFERRED, BackendStats, Deferred, FillToken
from .memory import MemoryBackend
from .redis import Invalidation, RedisBackend

__all__ = ["HybridBackend"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

_RETRY_MAX = 5.0
# An invalidation's kind on the channel (kept short: every write publishes one).
_OPS = {"key": "k", "namespace": "n", "tags": "t", "pattern": "p", "clear": "c"}


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
    ) -> None:
        self.l1 = MemoryBackend(max_items, clock=clock)
        self._clock = clock
        self.l2 = l2
        self.l1_max_ttl = l1_max_ttl
        self.channel = f"{l2.layout.base}invalidations"
        self._pubsub_url = pubsub_url or l2.redis.url
        self._source = uuid.uuid4().hex
        self._coherent = False
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
        )

    @property
    def coherent(self) -> bool:
        """Whether L1 is in use: the invalidation channel is subscribed."""
        return self._coherent

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        if self._coherent:
            value = self.l1.get_nowait(key)
            if value is not None:
                return value
        elif not self._listening():
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
        await self.l1.delete(key)
        try:
            return await self.l2.delete(key)
        finally:
            await self._announce(Invalidation("key", (key,)))

    async def invalidate_namespace(self, namespace: str) -> int:
        await self.l1.invalidate_namespace(namespace)
        try:
            return await self.l2.invalidate_namespace(namespace)
        finally:
            await self._announce(Invalidation("namespace", (namespace,)))

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        await self.l1.invalidate_tags(tags)
        try:
            return await self.l2.invalidate_tags(tags)
        finally:
            await self._announce(Invalidation("tags", tuple(tags)))

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        await self.l1.invalidate_pattern(pattern, namespace)
        try:
            return await self.l2.invalidate_pattern(pattern, namespace)
        finally:
            await self._announce(Invalidation("pattern", (pattern.source,), namespace))

    async def clear(self) -> int:
        await self.l1.clear()
        try:
            return await self.l2.clear()
        finally:
            await self._announce(Invalidation("clear"))

    async def cleanup_expired(self) -> int:
        await self.l1.cleanup_expired()
        return await self.l2.cleanup_expired()

    # --- statistics and lifecycle --------------------------------------------------------

    async def add_counters(self, hits: int, misses: int) -> None:
        await self.l2.add_counters(hits, misses)

    async def stats(self) -> BackendStats:
        return await self.l2.stats()

    async def close(self) -> None:
        self._coherent = False
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._client is not None:
            await self._client.aclose()
        await self.l2.close()

    # --- the invalidation channel --------------------------------------------------------

    def _l1_ttl(self, ttl: float | None) -> float:
        return self.l1_max_ttl if ttl is None else min(ttl, self.l1_max_ttl)

    async def _ensure_listening(self) -> None:
        if not self._listening():
            await self._listen()

    def _listening(self) -> bool:
        """Whether the listener runs: it ends with its event loop (when `asyncio.run` returns,
        say), and the next loop that uses this backend starts its own."""
        return self._listener is not None and not self._listener.done()

    async def _listen(self) -> None:
        """Start the listener and wait for its first subscription attempt to settle."""
        loop = asyncio.get_running_loop()
        self._client = None  # its connections, if any, belong to the loop of a listener that ended
        self._subscribed = loop.create_future()
        self._listener = loop.create_task(self._listen_forever())
        await asyncio.shield(self._subscribed)

    async def _listen_forever(self) -> None:
        backoff = 0.05
        while True:
            try:
                async with self._subscription() as pubsub:
                    backoff = 0.05
                    await self._receive(pubsub)
            except (rx.RedisError, OSError) as exc:
                await self._went_incoherent(exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RETRY_MAX)

    @contextlib.asynccontextmanager
    async def _subscription(self) -> Any:
        if self._client is None:
            self._client = Redis.from_url(
                self._pubsub_url,
                socket_connect_timeout=0.5,
                health_check_interval=1,
            )
        try:
            async with self._client.pubsub() as pubsub:
                await pubsub.subscribe(self.channel)
                while (await pubsub.get_message(timeout=1.0)) is None:
                    pass  # the first message is the subscription's confirmation
                await self.l1.clear()  # messages may have been missed while unsubscribed
                self._coherent = True
                self._settle()
                yield pubsub
        finally:
            self._coherent = False
            self._settle()

    async def _receive(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None and message["type"] == "message":
                await self._apply(message["data"])

    def _settle(self) -> None:
        if self._subscribed is not None and not self._subscribed.done():
            self._subscribed.set_result(None)

    async def _went_incoherent(self, exc: BaseException) -> None:
        # Messages may be lost from now on: nothing in L1 can be trusted until resubscribed.
        if await self.l1.clear():
            logger.warning("cache invalidation channel lost (%s); memory tier bypassed", exc)

    async def _apply(self, data: bytes) -> None:
        """Apply another process's invalidation to this process's L1."""
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if message.get("s") == self._source:
            return
        kind, arg = message.get("o"), message.get("a")
        if kind == "k":
            for key in arg:
                await self.l1.delete(key)
        elif kind == "n":
            await self.l1.invalidate_namespace(arg)
        elif kind == "t":
            await self.l1.invalidate_tags(arg)
        elif kind == "p":
            await self.l1.invalidate_pattern(GlobPattern.compile(arg), message.get("n"))
        elif kind == "c":
            await self.l1.clear()

    async def _announce(self, done: Invalidation) -> None:
        """Publish an invalidation for the other processes' L1s (`_apply` reads it).

        Publishes through the connection, not a backend method: this also runs inside the
        Redis backend's replay, which a backend method would wait for.
        """
        message: dict[str, Any] = {"s": self._source, "o": _OPS[done.kind], "a": list(done.names)}
        if done.kind == "namespace":  # a namespace or a pattern goes as one string
            message["a"] = done.names[0]
        elif done.kind == "pattern":
            message["a"], message["n"] = done.names[0], done.namespace
        data = orjson.dumps(message)
        try:
            await self.l2.redis.call(lambda client: client.publish(self.channel, data))
        except BackendError as exc:  # a lost announcement is bounded by l1_max_ttl
            logger.debug("could not announce an invalidation: %s", exc)
