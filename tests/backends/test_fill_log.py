"""Fills under a steady stream of unrelated invalidations, on the memory and Redis backends.

A fill (get_or_set_async's factory run) is stored unless something that covers its entry was
invalidated after its token was taken. The logs behind that check are kept per label, so any
number of invalidations of other keys, namespaces and tags during one fill never stops it
from storing; only one older than the log (more distinct labels than it keeps) is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from fastapi_cachekit import CacheService, MemoryBackend
from fastapi_cachekit.backends.base import CacheBackend
from fastapi_cachekit.backends.redis import RedisBackend

UNRELATED = 2000  # far past the old logs' 256 (Redis) and 1024 (memory) items


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[CacheBackend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    request.getfixturevalue("clean_redis")
    redis_url: str = request.getfixturevalue("redis_url")
    backend = RedisBackend(redis_url)
    yield backend
    await backend.close()


async def test_a_fill_during_thousands_of_unrelated_invalidations_is_stored(
    backend: CacheBackend,
) -> None:
    cache = CacheService(backend, enable_stats=False)
    factory_started, invalidations_done = asyncio.Event(), asyncio.Event()

    async def slow_factory() -> str:
        factory_started.set()
        await invalidations_done.wait()
        return "fresh"

    async def unrelated_invalidations() -> None:
        await factory_started.wait()
        for i in range(UNRELATED):
            await cache.delete(f"other:{i % 300}")  # 300 keys, over and over
        await cache.invalidate_tags([f"tag-{i}" for i in range(100)])
        invalidations_done.set()

    value, _ = await asyncio.gather(
        cache.get_or_set_async("user:1", slow_factory, ttl=60, tags=["users"]),
        unrelated_invalidations(),
    )
    assert value == "fresh"
    assert await cache.get("user:1") == "fresh"  # stored: the fill was not starved
    await cache.close()


async def test_a_fill_older_than_the_memory_log_is_refused() -> None:
    backend = MemoryBackend()
    token = await backend.fill_token()
    for i in range(16_385):  # one more distinct label than the log keeps
        await backend.delete(f"other:{i}")
    assert not await backend.set("k", b"v", ttl=None, namespace=None, tags=(), fill=token)
    assert await backend.set(
        "k", b"v", ttl=None, namespace=None, tags=(), fill=await backend.fill_token()
    )
