"""Each outcome the service decides is told once: reads, writes (and why one was not stored),
single flights, bypasses, faults; a hybrid's reads say which tier answered."""

from __future__ import annotations

import asyncio

import pytest

from fastapi_cachekit import CacheEvent, CacheObserver, CacheService, MemoryBackend
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.keys import storage_key


class Recorder:
    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def event(self, event: CacheEvent) -> None:
        self.events.append(event)

    def told(self) -> list[tuple[str, str, str | None]]:
        """(kind, layer, reason) of each event, in order; then forgotten."""
        told: list[tuple[str, str, str | None]] = [(e.kind, e.layer, e.reason) for e in self.events]
        self.events.clear()
        return told


def test_the_observer_port_is_importable_from_the_package_root() -> None:
    assert isinstance(Recorder(), CacheObserver)


async def test_writes_and_reads_are_told_once_each() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        assert await cache.set("a", 1, namespace="n")
        assert recorder.told() == [("stored", "memory", None)]
        assert recorder.events == []
        await cache.get("a", namespace="n")
        await cache.get("b", namespace="n")
        assert await cache.get_raw("a", namespace="n") is not None
        assert recorder.told() == [
            ("hit", "memory", None),
            ("miss", "memory", None),
            ("hit", "memory", None),
        ]
        assert await cache.get_or_set_async("c", lambda: 3, namespace="n") == 3
        assert recorder.told() == [("miss", "memory", None), ("stored", "memory", None)]


async def test_stored_events_carry_the_namespace_and_the_storage_key() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), default_namespace="app", observers=recorder) as cache:
        await cache.set("a", 1)
    (event,) = recorder.events
    assert (event.namespace, event.key) == ("app", storage_key("a", "app"))


async def test_a_fill_an_invalidation_overtook_is_not_stored() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        token = await cache.fill_token()
        await cache.delete("k")
        recorder.events.clear()
        assert not await cache.set_raw("k", b"old", fill=token)
    assert recorder.told() == [("not_stored", "memory", "fill_refused")]


async def test_a_value_past_the_memory_bound_is_not_stored() -> None:
    recorder = Recorder()
    backend = MemoryBackend(max_memory_bytes=1000)
    async with CacheService(backend, observers=recorder) as cache:
        assert not await cache.set_raw("big", b"x" * 5000)
    assert recorder.told() == [("not_stored", "memory", "refused")]


async def test_callers_that_join_a_flight_are_told_as_coalesced() -> None:
    recorder = Recorder()
    release = asyncio.Event()
    runs = 0

    async def factory() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 7

    joined = asyncio.Event()

    class Joins:
        def event(self, event: CacheEvent) -> None:
            if sum(e.kind == "coalesced" for e in recorder.events) == 2:
                joined.set()

    async with CacheService(MemoryBackend(), observers=[recorder, Joins()]) as cache:
        first = asyncio.create_task(cache.get_or_set_async("k", factory))
        others = [asyncio.create_task(cache.get_or_set_async("k", factory)) for _ in range(2)]
        await joined.wait()
        release.set()
        assert await asyncio.gather(first, *others) == [7, 7, 7]
    kinds = [kind for kind, _, _ in recorder.told()]
    assert runs == 1
    assert kinds.count("coalesced") == 2
    assert kinds.count("miss") == 3
    assert kinds.count("stored") == 1


async def test_turned_off_the_cache_tells_bypasses_not_stores() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        with cache.disabled():
            await cache.set("a", 1)
            await cache.get("a")
            await cache.get_or_set_async("b", lambda: 2)
        stats = await cache.get_stats()
    told = recorder.told()
    assert told == [
        ("bypass", "service", "write"),
        ("bypass", "service", "read"),
        ("miss", "memory", None),
        ("bypass", "service", "fill"),
        ("miss", "memory", None),
    ]
    assert stats.bypasses == sum(kind == "bypass" for kind, _, _ in told)


async def test_a_value_that_cannot_be_decoded_is_a_fault_and_a_miss() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        await cache.set_raw("a", b"\xff not json")
        recorder.events.clear()
        assert await cache.get("a") is None
    assert recorder.told() == [
        ("fault", "service", "SerializationError"),
        ("miss", "memory", None),
    ]


async def test_a_batch_write_tells_each_keys_outcome() -> None:
    recorder = Recorder()
    backend = MemoryBackend(max_memory_bytes=1000)
    async with CacheService(backend, observers=recorder) as cache:
        assert await cache.set_many({"a": 1, "big": "x" * 5000}, namespace="n") == 1
    assert recorder.told() == [("stored", "memory", None), ("not_stored", "memory", "refused")]


async def test_turned_off_a_batch_is_one_bypass_event_with_its_count() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        with cache.disabled():
            assert await cache.set_many({"a": 1, "b": 2}) == 0
            assert await cache.get_many(["a", "b", "c"]) == {}
        stats = await cache.get_stats()
    bypasses = [(e.reason, e.count) for e in recorder.events if e.kind == "bypass"]
    assert bypasses == [("write", 2), ("read", 3)]
    assert stats.bypasses == 5


async def test_values_that_cannot_be_decoded_are_service_faults_in_batches_and_refreshes() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        await cache.set_raw("a", b"\xff not json")
        recorder.events.clear()
        assert await cache.get_many(["a"]) == {}
        assert await cache.get_or_set_async("a", lambda: 2, ttl=10, refresh_ahead=1) == 2
    faults = [(e.layer, e.reason) for e in recorder.events if e.kind == "fault"]
    assert faults == [("service", "SerializationError")] * 2


async def test_an_observer_added_later_hears_faults_and_writes_too() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend()) as cache:
        await cache.set("a", 1)
        cache.add_observer(recorder)
        await cache.set("b", 1)
        cache.remove_observer(recorder)
        await cache.set("c", 1)
    assert recorder.told() == [("stored", "memory", None)]


@pytest.mark.redis
async def test_a_hybrid_tells_which_tier_answered(redis_url: str, clean_redis: object) -> None:
    recorder = Recorder()
    backend = HybridBackend(RedisBackend(redis_url, key_prefix="ev"))
    async with CacheService(backend, observers=recorder) as cache:
        await cache.set("a", 1)  # in Redis and in this process's memory tier
        assert await cache.get("a") == 1  # from L1, without a coroutine
        await backend.l1.clear()
        assert await cache.get("a") == 1  # from Redis, promoted into L1 again
        assert await cache.get_raw("a") is not None
        assert await cache.get("b") is None
    assert recorder.told() == [
        ("stored", "l2", None),
        ("hit", "l1", None),
        ("hit", "l2", None),
        ("hit", "l1", None),
        ("miss", "l2", None),
    ]
