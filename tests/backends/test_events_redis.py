"""What only the Redis backend sees is told through the service's observers: its breaker
opening and closing, invalidations queued while Redis is down and replayed once it is back,
and fills waiting for another process's claim. Real faults: a stopped redis-server."""

from __future__ import annotations

import asyncio
import time

import pytest

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.events import CacheEvent
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis

_DEADLINE = 10.0  # seconds: only reached when something is broken


class Recorder:
    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def event(self, event: CacheEvent) -> None:
        self.events.append(event)

    def of(self, kind: str) -> list[CacheEvent]:
        return [e for e in self.events if e.kind == kind]

    async def until(self, kind: str) -> CacheEvent:
        """The first event of `kind`, waited for (polling, bounded)."""
        deadline = time.monotonic() + _DEADLINE
        while not self.of(kind):
            assert time.monotonic() < deadline, f"no {kind} event"
            await asyncio.sleep(0.005)
        return self.of(kind)[0]


def quick_backend(url: str) -> RedisBackend:
    return RedisBackend(url, socket_timeout=0.1, connect_timeout=0.1, breaker_max_backoff=0.02)


async def test_a_stopped_server_opens_the_breaker_and_queues_invalidations(
    redis_server: RedisServer,
) -> None:
    recorder = Recorder()
    async with CacheService(quick_backend(redis_server.url), observers=recorder) as cache:
        await cache.set("a", 1, tags=["t"])
        redis_server.stop()
        assert await cache.get("a") is None
        assert await cache.get("a") is None
        assert await cache.invalidate_tags(["t"]) == 0
        (opened,) = recorder.of("breaker_open")
        assert opened.layer == "redis"
        faults = recorder.of("fault")
        assert faults
        assert {(f.layer, f.reason) for f in faults} == {("redis", "BackendUnavailable")}
        (invalidation,) = recorder.of("invalidation")
        assert (invalidation.reason, invalidation.count, invalidation.queued) == ("tags", 0, True)
        assert recorder.of("breaker_closed") == recorder.of("replay") == []

        redis_server.start()
        replay = await recorder.until("replay")
        assert replay.count == 1
        assert replay.layer == "redis"
        await recorder.until("breaker_closed")
    assert len(recorder.of("breaker_open")) == 1
    assert len(recorder.of("breaker_closed")) == 1
    assert len(recorder.of("replay")) == 1


async def test_an_invalidation_redis_applied_is_not_queued(redis_server: RedisServer) -> None:
    recorder = Recorder()
    async with CacheService(quick_backend(redis_server.url), observers=recorder) as cache:
        await cache.set("a", 1, namespace="n")
        assert await cache.invalidate_namespace("n") == 1
    (invalidation,) = recorder.of("invalidation")
    assert (invalidation.namespace, invalidation.count, invalidation.queued) == ("n", 1, False)


async def test_a_write_to_a_stopped_server_is_not_stored_for_a_fault(
    redis_server: RedisServer,
) -> None:
    recorder = Recorder()
    async with CacheService(quick_backend(redis_server.url), observers=recorder) as cache:
        await cache.get("warm-up")
        redis_server.stop()
        assert not await cache.set("a", 1, namespace="n")
    (not_stored,) = recorder.of("not_stored")
    assert (not_stored.layer, not_stored.namespace, not_stored.reason) == ("redis", "n", "fault")


async def test_a_fill_waiting_for_another_process_is_told_with_its_wait(
    redis_server: RedisServer,
) -> None:
    recorder = Recorder()
    other = CacheService(RedisBackend(redis_server.url))
    cache = CacheService(RedisBackend(redis_server.url), fill_lock_timeout=5, observers=recorder)
    async with other, cache:
        owner = await other.backend.acquire_fill_lock("k", 5)
        assert owner is not None
        waiting = asyncio.create_task(cache.get_or_set_async("k", lambda: "mine"))
        await recorder.until("miss")
        await other.set("k", "theirs")
        assert await waiting == "theirs"
    (wait,) = recorder.of("lock_wait")
    assert (wait.layer, wait.reason) == ("redis", "served")
    assert wait.duration is not None
    assert wait.duration > 0
    assert recorder.of("stored") == []


async def test_an_unobserved_service_on_the_same_backend_does_not_silence_it(
    redis_server: RedisServer,
) -> None:
    recorder = Recorder()
    backend = quick_backend(redis_server.url)
    observed = CacheService(backend, observers=recorder)
    CacheService(backend)  # e.g. a second service built over the same backend
    async with observed:
        await observed.get("warm-up")
        redis_server.stop()
        await observed.get("a")
    assert len(recorder.of("breaker_open")) == 1
