"""The service's fault accounting and cross-process fill claims, on a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.redis import RedisBackend
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis


async def test_each_backend_fault_is_counted_once(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, breaker_max_backoff=0.05)
    cache = CacheService(backend)
    await cache.set("k", 1)
    redis_server.stop()
    assert await cache.get("k") is None
    redis_server.start()
    failed_stats_calls = 0
    for _ in range(200):  # until the breaker lets a probe through and stats are Redis's
        stats = await cache.get_stats()
        if stats.memory_usage_bytes is not None:
            break
        failed_stats_calls += 1
        await asyncio.sleep(0.01)
    assert stats.memory_usage_bytes is not None
    # The get, and for each get_stats that failed, its counter flush and its stats call:
    # each failed call once, none counted again by the backend.
    assert stats.errors == 1 + 2 * failed_stats_calls
    await cache.close()


async def test_pending_invalidations_show_while_redis_is_down(
    redis_server: RedisServer,
) -> None:
    cache = CacheService(RedisBackend(redis_server.url, breaker_max_backoff=60))
    await cache.set("k", 1)
    redis_server.stop()
    try:
        assert await cache.delete("k") is False  # queued, replayed when Redis is back
        stats = await cache.get_stats()
        assert stats.pending_invalidations == 1
        assert stats.errors >= 2
    finally:
        redis_server.start()
        await cache.close()


async def test_a_waiter_takes_over_a_claim_released_without_a_value(
    redis_url: str, clean_redis: object
) -> None:
    """Another process claimed the key and gave up (it failed): waiters must not sit out
    the whole claim timeout."""
    backend = RedisBackend(redis_url)
    cache = CacheService(backend, fill_lock_timeout=3600)
    other = RedisBackend(redis_url)
    owner = await other.acquire_fill_lock("report", 3600)
    assert owner is not None
    waiter = asyncio.create_task(cache.get_or_set_async("report", lambda: "computed here"))
    await asyncio.sleep(0.05)
    assert not waiter.done()  # it waits while the claim is held
    await other.release_fill_lock("report", owner)
    # Without the take-over this would wait for an hour; the guard only catches a hang.
    assert await asyncio.wait_for(waiter, timeout=30) == "computed here"
    assert await cache.get("report") == "computed here"
    await other.close()
    await cache.close()
