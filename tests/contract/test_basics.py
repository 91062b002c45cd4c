"""get / set / delete / exists, namespaces as part of the key, and value isolation."""

from __future__ import annotations

from fastapi_cachekit import CacheService
from tests.contract.conftest import MakeCache


async def test_get_returns_what_set_stored(cache: CacheService) -> None:
    await cache.set("user:123", {"name": "Ada", "roles": ["admin"]})
    assert await cache.get("user:123") == {"name": "Ada", "roles": ["admin"]}


async def test_miss_returns_none_or_the_given_default(cache: CacheService) -> None:
    assert await cache.get("absent") is None
    marker = object()
    assert await cache.get("absent", default=marker) is marker


async def test_none_is_a_storable_value_told_apart_by_default(cache: CacheService) -> None:
    await cache.set("nothing", None)
    marker = object()
    assert await cache.get("nothing", default=marker) is None
    assert await cache.exists("nothing")


async def test_set_overwrites(cache: CacheService) -> None:
    await cache.set("k", 1)
    await cache.set("k", 2)
    assert await cache.get("k") == 2


async def test_delete_reports_whether_an_entry_was_removed(cache: CacheService) -> None:
    await cache.set("k", "v")
    assert await cache.delete("k") is True
    assert await cache.get("k") is None
    assert await cache.delete("k") is False


async def test_exists(cache: CacheService) -> None:
    assert not await cache.exists("k")
    await cache.set("k", 0)
    assert await cache.exists("k")


async def test_namespace_is_part_of_the_full_key(cache: CacheService) -> None:
    await cache.set("profile", "p1", namespace="user:1")
    await cache.set("profile", "p2", namespace="user:2")
    assert await cache.get("profile", namespace="user:1") == "p1"
    assert await cache.get("profile", namespace="user:2") == "p2"
    assert await cache.get("profile") is None
    # "user:1:profile" is the entry's full key for display; as a key without a namespace it
    # names another entry.
    assert await cache.get("user:1:profile") is None


async def test_the_same_full_key_without_a_namespace_is_another_entry(
    cache: CacheService,
) -> None:
    await cache.set("b", 1, namespace="a")
    await cache.set("a:b", 2)
    assert await cache.get("b", namespace="a") == 1
    assert await cache.invalidate_namespace("a") == 1
    assert await cache.get("a:b") == 2


async def test_default_namespace_applies_when_none_given(make_cache: MakeCache) -> None:
    cache = make_cache(default_namespace="myapp")
    await cache.set("k", "v")
    assert await cache.get("k") == "v"
    assert await cache.get("k", namespace="myapp") == "v"
    assert await cache.invalidate_namespace("myapp") == 1
    assert await cache.get("k") is None


async def test_mutating_a_returned_value_does_not_change_the_cache(cache: CacheService) -> None:
    await cache.set("k", {"items": [1, 2]})
    first = await cache.get("k")
    first["items"].append(3)
    assert await cache.get("k") == {"items": [1, 2]}


async def test_mutating_a_stored_value_does_not_change_the_cache(cache: CacheService) -> None:
    value = {"items": [1, 2]}
    await cache.set("k", value)
    value["items"].append(3)
    assert await cache.get("k") == {"items": [1, 2]}


async def test_clear_all_removes_everything_and_counts(cache: CacheService) -> None:
    for i in range(5):
        await cache.set(f"k{i}", i, namespace="ns" if i % 2 else None, tags=["t"])
    assert await cache.clear_all() == 5
    assert await cache.get("k0") is None
    assert (await cache.get_stats()).total_entries == 0


async def test_async_context_manager_closes(make_cache: MakeCache) -> None:
    async with make_cache() as cache:
        await cache.set("k", 1)
        assert await cache.get("k") == 1
