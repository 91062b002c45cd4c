"""Statistics: hits, misses, hit rate, entries, oldest/newest entry, memory."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi_cachekit import CacheService
from tests.clock import FakeClock
from tests.contract.conftest import MakeCache


async def test_hits_misses_and_rate(cache: CacheService) -> None:
    await cache.set("k", 1)
    await cache.get("k")
    await cache.get("k")
    await cache.get("k")
    await cache.get("absent")
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (3, 1)
    assert stats.hit_rate == 0.75


async def test_empty_cache_has_zero_rate(cache: CacheService) -> None:
    stats = await cache.get_stats()
    assert stats.hit_rate == 0.0
    assert stats.total_entries == 0
    assert stats.oldest_entry is None
    assert stats.newest_entry is None


async def test_exists_counts_nothing(cache: CacheService) -> None:
    await cache.set("k", 1)
    await cache.exists("k")
    await cache.exists("absent")
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (0, 0)


async def test_get_or_set_counts_once_per_call(cache: CacheService) -> None:
    await cache.get_or_set_async("k", lambda: 1)  # miss (ran the factory)
    await cache.get_or_set_async("k", lambda: 2)  # hit
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (1, 1)


async def test_stats_can_be_turned_off(make_cache: MakeCache) -> None:
    cache = make_cache(enable_stats=False)
    await cache.set("k", 1)
    await cache.get("k")
    await cache.get("absent")
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (0, 0)
    assert stats.total_entries == 1


async def test_entries_and_oldest_newest(cache: CacheService, clock: FakeClock) -> None:
    first = clock.now
    await cache.set("a", 1)
    clock.advance(60)
    await cache.set("b", 2)
    clock.advance(60)
    await cache.set("c", 3, ttl=1)
    clock.advance(2)  # c has expired: it counts no more
    stats = await cache.get_stats()
    assert stats.total_entries == 2
    assert stats.oldest_entry is not None
    assert stats.newest_entry is not None
    assert stats.oldest_entry.tzinfo is timezone.utc
    assert (
        abs(stats.oldest_entry - datetime.fromtimestamp(first, timezone.utc)).total_seconds() < 0.01
    )
    assert abs((stats.newest_entry - stats.oldest_entry).total_seconds() - 60) < 0.01


async def test_memory_usage_grows_with_content(cache: CacheService) -> None:
    await cache.set("small", "x")
    small = (await cache.get_stats()).memory_usage_bytes
    await cache.set("big", "x" * 100_000)
    big = (await cache.get_stats()).memory_usage_bytes
    assert small is not None
    assert big is not None
    assert big - small >= 100_000
