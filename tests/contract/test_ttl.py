"""Time to live, with an injected clock: default, explicit, None, expiry and cleanup."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fastapi_cachekit import CacheService, InvalidTTLError
from fastapi_cachekit.ttl import MAX_TTL
from tests.clock import FakeClock
from tests.contract.conftest import MakeBackend, MakeCache


async def test_default_ttl_applies_when_ttl_is_omitted(
    make_cache: MakeCache, clock: FakeClock
) -> None:
    cache = make_cache(default_ttl=10)
    await cache.set("k", "v")
    clock.advance(9.9)
    assert await cache.get("k") == "v"
    clock.advance(0.1)
    assert await cache.get("k") is None


@pytest.mark.parametrize("ttl", [timedelta(seconds=30), 30, 30.0])
async def test_explicit_ttl_forms(cache: CacheService, clock: FakeClock, ttl: object) -> None:
    await cache.set("k", "v", ttl=ttl)  # type: ignore[arg-type]
    clock.advance(29.999)
    assert await cache.exists("k")
    clock.advance(0.001)
    assert not await cache.exists("k")
    assert await cache.get("k") is None


async def test_ttl_none_never_expires(make_cache: MakeCache, clock: FakeClock) -> None:
    cache = make_cache(default_ttl=5)
    await cache.set("static_config", {"a": 1}, ttl=None)
    clock.advance(10 * 365 * 24 * 3600)
    assert await cache.get("static_config") == {"a": 1}


async def test_millisecond_resolution(cache: CacheService, clock: FakeClock) -> None:
    await cache.set("k", "v", ttl=0.25)
    clock.advance(0.249)
    assert await cache.get("k") == "v"
    clock.advance(0.001)
    assert await cache.get("k") is None


@pytest.mark.parametrize("ttl", [0, -1, timedelta(0), 0.0001, float("nan"), float("inf")])
async def test_non_positive_ttl_is_refused_and_nothing_stored(
    cache: CacheService, ttl: object
) -> None:
    with pytest.raises(InvalidTTLError, match=r"delete\(\)|ttl=None"):
        await cache.set("k", "v", ttl=ttl)  # type: ignore[arg-type]
    assert not await cache.exists("k")


@pytest.mark.parametrize("ttl", ["60", True, [1]])
async def test_ttl_of_the_wrong_type_is_refused(cache: CacheService, ttl: object) -> None:
    with pytest.raises(InvalidTTLError, match="timedelta"):
        await cache.set("k", "v", ttl=ttl)  # type: ignore[arg-type]


async def test_invalid_ttl_is_a_value_error(cache: CacheService) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", "v", ttl=-5)


async def test_expired_entries_are_not_counted_by_invalidation(
    cache: CacheService, clock: FakeClock
) -> None:
    await cache.set("a", 1, ttl=1, tags=["t"], namespace="ns")
    await cache.set("b", 2, ttl=100, tags=["t"], namespace="ns")
    clock.advance(2)
    assert await cache.invalidate_tags(["t"]) == 1
    await cache.set("a", 1, ttl=1, namespace="ns")
    await cache.set("b", 2, ttl=100, namespace="ns")
    clock.advance(2)
    assert await cache.invalidate_namespace("ns") == 1
    assert await cache.delete("b", namespace="ns") is False


async def test_cleanup_expired_removes_and_counts(cache: CacheService, clock: FakeClock) -> None:
    await cache.set("short1", 1, ttl=1, tags=["t"])
    await cache.set("short2", 2, ttl=1, namespace="ns")
    await cache.set("long", 3, ttl=100, tags=["t"])
    await cache.set("forever", 4, ttl=None)
    clock.advance(5)
    assert await cache.cleanup_expired() == 2
    assert await cache.cleanup_expired() == 0
    stats = await cache.get_stats()
    assert stats.total_entries == 2
    assert await cache.invalidate_tags(["t"]) == 1


TOO_LONG = [2**31 + 1, 1e300, 2**70, 10**400, timedelta.max]


@pytest.mark.parametrize("ttl", TOO_LONG, ids=["2**31+1", "1e300", "2**70", "10**400", "max"])
async def test_a_ttl_past_the_bound_is_refused_and_nothing_stored(
    cache: CacheService, ttl: object
) -> None:
    refused = pytest.raises(InvalidTTLError, match=r"at most 2147483648 s .*ttl=None")
    with refused:
        await cache.set("k", "v", ttl=ttl)  # type: ignore[arg-type]
    with refused:
        await cache.set_raw("k", b"v", ttl=ttl)  # type: ignore[arg-type]
    with refused:
        await cache.get_or_set_async("k", lambda: "v", ttl=ttl)  # type: ignore[arg-type]
    assert not await cache.exists("k")


async def test_the_longest_ttl_is_kept(cache: CacheService, clock: FakeClock) -> None:
    await cache.set("k", "v", ttl=MAX_TTL)
    clock.advance(MAX_TTL - 1)  # a whole second each side: the clock's float is coarse here
    assert await cache.get("k") == "v"
    clock.advance(2)
    assert await cache.get("k") is None


async def test_a_default_ttl_past_the_bound_is_refused(make_backend: MakeBackend) -> None:
    with pytest.raises(InvalidTTLError, match="at most"):
        CacheService(make_backend(), default_ttl=10**400)
