"""Batches on Redis: one round trip, the single-key writes' index upkeep, scripts the server
forgot, chunked reads, a stopped server, and the hybrid tier's promotion and announcement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis import batch as redis_batch
from tests.backends.redis_support import index_members, open_raw
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis

_NO_LABELS: dict[str, object] = {"ttl": None, "namespace": None, "tags": ()}


@pytest.fixture
async def backend(redis_url: str, clean_redis: object) -> AsyncIterator[RedisBackend]:
    made = RedisBackend(redis_url, key_prefix="b")
    yield made
    await made.close()


async def test_a_batch_is_one_round_trip(backend: RedisBackend) -> None:
    items = [(f"k{i}", b"v%d" % i) for i in range(50)]
    calls = backend.redis.attempts
    assert await backend.set_many(items, **_NO_LABELS) == [True] * 50  # type: ignore[arg-type]
    assert await backend.get_many([key for key, _ in items]) == [v for _, v in items]
    assert await backend.delete_many([key for key, _ in items]) == 50
    assert backend.redis.attempts == calls + 3


async def test_an_overwrite_takes_the_entry_out_of_its_old_indexes(
    backend: RedisBackend, redis_url: str
) -> None:
    """What `set` does for an entry whose labels change, `set_many` does too."""
    await backend.set("k", b"1", ttl=None, namespace="old", tags=("a",))
    await backend.set_many([("k", b"2")], ttl=None, namespace="new", tags=("b",))
    raw = open_raw(redis_url, cluster=False)
    assert index_members(raw, backend, "n", "old") == set()
    assert index_members(raw, backend, "t", "a") == set()
    assert index_members(raw, backend, "t", "b") == {"k"}
    raw.close()


async def test_scripts_the_server_forgot_are_loaded_again(
    backend: RedisBackend, redis_url: str
) -> None:
    await backend.set("warm", b"0", ttl=None, namespace=None, tags=())
    raw = aioredis.Redis.from_url(redis_url)
    await raw.script_flush()
    await raw.aclose()
    assert await backend.set_many([("a", b"1"), ("b", b"2")], **_NO_LABELS) == [True, True]  # type: ignore[arg-type]
    assert await backend.delete_many(["a", "b", "warm"]) == 3


async def test_big_reads_go_in_chunks(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_batch, "MGET_CHUNK", 3)
    items = [(f"k{i}", b"%d" % i) for i in range(10)]
    await backend.set_many(items, **_NO_LABELS)  # type: ignore[arg-type]
    keys = ["absent", *(key for key, _ in items)]
    assert await backend.get_many(keys) == [None, *(value for _, value in items)]


async def test_a_stopped_server_fails_open_and_the_deletes_are_owed(
    redis_server: RedisServer,
) -> None:
    cache = CacheService(RedisBackend(redis_server.url, breaker_max_backoff=60))
    await cache.set_many({"a": 1, "b": 2})
    redis_server.stop()
    try:
        assert await cache.get_many(["a", "b"]) == {}
        assert await cache.set_many({"c": 3}) == 0
        assert await cache.delete_many(["a", "b"]) == 0
        stats = await cache.get_stats()  # its own flush and stats calls fail too
        assert (stats.total_misses, stats.pending_invalidations) == (2, 1)
        assert stats.errors >= 3
    finally:
        redis_server.start()
    cache.backend.redis_answered()  # type: ignore[attr-defined]
    assert await cache.get_many(["a", "b", "c"]) == {}  # the owed deletes went first
    await cache.close()


@pytest.fixture
async def hybrids(
    redis_url: str, clean_redis: object
) -> AsyncIterator[tuple[HybridBackend, HybridBackend]]:
    clock = FakeClock()
    pair = tuple(
        HybridBackend(RedisBackend(redis_url, key_prefix="h", clock=clock), clock=clock)
        for _ in range(2)
    )
    yield pair  # type: ignore[misc]
    for hybrid in pair:
        await hybrid.close()


async def test_hybrid_batches_promote_and_announce_once(
    hybrids: tuple[HybridBackend, HybridBackend], redis_url: str
) -> None:
    writer, reader = hybrids
    raw = aioredis.Redis.from_url(redis_url)
    listener = raw.pubsub()
    await listener.psubscribe(f"{writer.channel}:*")  # every sender's
    await listener.get_message(timeout=1)  # the subscription's confirmation
    items = [("a", b"1"), ("b", b"2"), ("c", b"3")]
    assert await writer.set_many(items, **_NO_LABELS) == [True] * 3  # type: ignore[arg-type]
    assert await reader.get_many(["a", "b", "c", "d"]) == [b"1", b"2", b"3", None]
    calls = reader.l2.redis.attempts
    assert await reader.get_many(["a", "b", "c"]) == [b"1", b"2", b"3"]  # from its L1
    assert reader.l2.redis.attempts == calls
    assert await writer.delete_many(["a", "b"]) == 2
    await writer.delete("end")  # its announcement marks the end of the batches'
    announced: list[list[str]] = []
    while announced[-1:] != [["end"]]:
        message = await listener.get_message(timeout=5)
        assert message is not None, "an announcement never came"
        announced.append(orjson.loads(message["data"])["a"])
    assert announced == [["a", "b", "c"], ["a", "b"], ["end"]]  # one per batch
    for _ in range(500):  # until the reader has heard the delete
        if "a" not in reader.l1._entries and "b" not in reader.l1._entries:
            break
        await asyncio.sleep(0.002)
    assert await reader.get_many(["a", "b", "c"]) == [None, None, b"3"]
    await listener.aclose()
    await raw.aclose()
