"""Entries per namespace and per tag (the optional LabelCounting capability), on every backend."""

from __future__ import annotations

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.base import LabelCounting, LabelCounts
from tests.clock import FakeClock


async def counts(cache: CacheService, limit: int = 10) -> LabelCounts:
    backend = cache.backend
    assert isinstance(backend, LabelCounting)
    return await backend.label_counts(limit)


async def test_counts_are_largest_first_and_limited(cache: CacheService) -> None:
    for i in range(3):
        await cache.set(f"u{i}", i, namespace="users", tags=["team:a", "all"])
    await cache.set("o1", 1, namespace="orders", tags=["all"])
    await cache.set("o2", 2, namespace="orders", tags=["all"])
    await cache.set("p", 3, namespace="products")

    found = await counts(cache)
    assert found.namespaces == (("users", 3), ("orders", 2), ("products", 1))
    assert found.tags == (("all", 5), ("team:a", 3))
    assert found.complete

    top = await counts(cache, limit=1)
    assert (top.namespaces, top.tags) == ((("users", 3),), (("all", 5),))


async def test_invalidated_and_expired_labels_are_not_listed(
    cache: CacheService, clock: FakeClock
) -> None:
    await cache.set("a", 1, namespace="kept", tags=["kept"])
    await cache.set("b", 2, namespace="dropped", tags=["dropped"])
    await cache.set("c", 3, ttl=5, namespace="short", tags=["short"])
    await cache.invalidate_tags(["dropped"])
    clock.advance(10)

    found = await counts(cache)
    assert found.namespaces == (("kept", 1),)
    assert found.tags == (("kept", 1),)


async def test_hostile_names_come_back_as_they_were_written(cache: CacheService) -> None:
    name = '<img src=x onerror="alert(1)">'
    await cache.set("k", 1, namespace="n", tags=[name])
    assert (await counts(cache)).tags == ((name, 1),)
