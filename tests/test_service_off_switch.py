"""CacheService.disabled(): blocks of several tasks may overlap."""

from __future__ import annotations

from fastapi_cachekit import CacheService, MemoryBackend


async def test_overlapping_blocks_keep_the_cache_off_until_the_last_one_ends() -> None:
    cache = CacheService(MemoryBackend())
    first, second = cache.disabled(), cache.disabled()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first task's block ends while the second's runs
    assert not cache.enabled
    await cache.set("k", "v")
    assert await cache.get("k") is None
    second.__exit__(None, None, None)
    assert cache.enabled
    await cache.set("k", "v")
    assert await cache.get("k") == "v"


async def test_a_cache_built_off_stays_off_after_a_block() -> None:
    cache = CacheService(MemoryBackend(), enabled=False)
    with cache.disabled():
        pass
    assert not cache.enabled
