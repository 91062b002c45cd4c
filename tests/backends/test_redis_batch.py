"""Batches on Redis: one round trip, one write script call per shard and chunk that keeps the
single-key writes' fill checks and index upkeep, scripts the server forgot, chunked reads, a
stopped server, and the hybrid tier's promotion and announcement."""

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
from tests.backends.redis_support import (
    index_members,
    listed,
    members,
    open_raw,
    script_calls,
)
from tests.clock import FakeClock
from tests.redis_servers import RedisServer, RedisServers

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


async def test_a_big_batch_is_one_script_call_per_chunk(
    backend: RedisBackend, redis_servers: RedisServers, redis_url: str
) -> None:
    server = [redis_servers.single()]
    await backend.set_many([("warm", b"0")], **_NO_LABELS)  # type: ignore[arg-type]
    before = script_calls(server)
    items = [(f"k{i}", b"%d" % i) for i in range(250)]
    assert await backend.set_many(items, ttl=None, namespace="n", tags=("t",)) == [True] * 250
    assert script_calls(server) == before + 3  # 100, 100 and 50 entries
    keys = [key for key, _ in items]
    assert await backend.get_many(keys) == [value for _, value in items]
    raw = open_raw(redis_url, cluster=False)
    assert index_members(raw, backend, "n", "n") == set(keys)
    assert index_members(raw, backend, "t", "t") == set(keys)
    assert listed(raw, backend) == {"warm", *keys}
    raw.close()


async def test_each_chunk_trims_the_expired_members_its_entries_owe(
    redis_url: str, clean_redis: RedisServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As many as the same writes one by one would trim: up to `scripts.TRIM` per entry."""
    clock = FakeClock()
    backend = RedisBackend(redis_url, key_prefix="b", clock=clock)
    await backend.set_many([(f"old{i}", b"0") for i in range(30)], ttl=1, namespace=None, tags=())
    clock.advance(2)
    monkeypatch.setattr(redis_batch, "SET_MANY_CHUNK", 5)
    server = [clean_redis.single()]
    before = script_calls(server)
    new = [(f"new{i}", b"1") for i in range(10)]
    assert await backend.set_many(new, ttl=1, namespace=None, tags=()) == [True] * 10
    assert script_calls(server) == before + 2
    raw = open_raw(redis_url, cluster=False)
    shard = backend.layout.shards[0]
    expected = {f"new{i}" for i in range(10)}
    assert listed(raw, backend) == expected  # 2 calls of 5 entries: up to 40 trimmed
    assert {m.decode() for m in raw.zrange(shard.created, 0, -1)} == expected
    raw.close()
    await backend.close()


async def test_a_stale_fill_refuses_only_its_own_keys_in_a_batch(
    backend: RedisBackend, redis_servers: RedisServers, redis_url: str
) -> None:
    labels: dict[str, object] = {"ttl": None, "namespace": None, "tags": ("t",)}
    await backend.set_many([(key, b"0") for key in "abcd"], **labels)  # type: ignore[arg-type]
    token = await backend.fill_token()
    await backend.delete("b")  # after the token: b's and d's computed values may be stale
    await backend.delete("d")
    server = [redis_servers.single()]
    before = script_calls(server)
    items = [(key, b"1") for key in "abcd"]
    stored = await backend.set_many(items, fill=token, **labels)  # type: ignore[arg-type]
    assert stored == [True, False, True, False]
    assert script_calls(server) == before + 1
    assert await backend.get_many(list("abcd")) == [b"1", None, b"1", None]
    raw = open_raw(redis_url, cluster=False)
    assert listed(raw, backend) == {"a", "c"}  # the refused entries are not listed
    raw.close()


async def test_an_overwrite_in_a_batch_leaves_the_labels_it_dropped(
    backend: RedisBackend, redis_servers: RedisServers, redis_url: str
) -> None:
    await backend.set("a", b"0", ttl=None, namespace="old", tags=("x",))
    await backend.set("b", b"0", ttl=None, namespace="new", tags=("x", "gone"))
    await backend.set("same", b"0", ttl=None, namespace="new", tags=("x",))
    server = [redis_servers.single()]
    before = script_calls(server)
    items = [("a", b"1"), ("b", b"1"), ("same", b"1"), ("c", b"1")]
    stored = await backend.set_many(items, ttl=None, namespace="new", tags=("x",))
    assert stored == [True] * 4
    assert script_calls(server) == before + 3  # the batch's, then `settle` of a and b
    raw = open_raw(redis_url, cluster=False)
    assert index_members(raw, backend, "n", "old") == set()
    assert index_members(raw, backend, "t", "gone") == set()
    assert index_members(raw, backend, "n", "new") == {"a", "b", "same", "c"}
    assert index_members(raw, backend, "t", "x") == {"a", "b", "same", "c"}
    raw.close()
    assert await backend.invalidate_namespace("old") == 0
    assert await backend.invalidate_tags(["gone"]) == 0
    assert await backend.get_many(["a", "b", "same", "c"]) == [b"1"] * 4


@pytest.fixture
async def cluster_backend(
    redis_cluster_url: str, clean_redis: object
) -> AsyncIterator[RedisBackend]:
    made = RedisBackend(redis_cluster_url, key_prefix="b", cluster=True)
    yield made
    await made.close()


async def test_a_cluster_batch_is_one_script_call_per_shard_and_chunk(
    cluster_backend: RedisBackend,
    redis_servers: RedisServers,
    redis_cluster_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend, nodes = cluster_backend, redis_servers.cluster()
    layout = backend.layout
    warm = [(f"warm{i}", b"0") for i in range(200)]  # every node loads the script
    await backend.set_many(warm, **_NO_LABELS)  # type: ignore[arg-type]
    items = [(f"k{i}", b"%d" % i) for i in range(100)]
    by_shard: dict[object, set[str]] = {}
    for key, _ in items:
        by_shard.setdefault(layout.shard_of(key), set()).add(key)
    assert len(by_shard) > 1
    before = script_calls(nodes)
    assert await backend.set_many(items, ttl=None, namespace=None, tags=("t",)) == [True] * 100
    assert script_calls(nodes) == before + len(by_shard)
    raw = open_raw(redis_cluster_url, cluster=True)
    for shard in layout.shards:
        assert members(raw, shard.index("t", "t")) == by_shard.get(shard, set())
    raw.close()
    assert await backend.get_many([key for key, _ in items]) == [value for _, value in items]
    monkeypatch.setattr(redis_batch, "SET_MANY_CHUNK", 2)
    before = script_calls(nodes)
    assert await backend.set_many(items, ttl=None, namespace=None, tags=("t",)) == [True] * 100
    assert script_calls(nodes) == before + sum((len(keys) + 1) // 2 for keys in by_shard.values())
    assert await backend.invalidate_tags(["t"]) == 100


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
