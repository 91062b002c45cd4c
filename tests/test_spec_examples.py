"""The spec's examples that need neither Redis nor HTTP, as written (wiring adapted).

`compose.cache(...)` becomes `create_cache(...)`, and `app.kits["cache"].service` the service
it returns. Databases and APIs are small in-memory stand-ins that count their calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from fastapi_cachekit import CacheService, cached, create_cache


@pytest.fixture
async def cache_service() -> AsyncIterator[CacheService]:
    service = create_cache(backend="memory", max_memory_items=1000, default_ttl_seconds=3600)
    yield service
    await service.close()


class FakeDB:
    """Counts queries so tests can tell cache hits from database hits."""

    def __init__(self) -> None:
        self.queries = 0

    async def fetch(self, **row: Any) -> dict[str, Any]:
        self.queries += 1
        return dict(row)


async def test_quick_start(cache_service: CacheService) -> None:
    user_data = {"id": 123, "name": "Ada"}
    await cache_service.set("user:123", user_data, ttl=timedelta(minutes=5))
    user_data = await cache_service.get("user:123")
    assert user_data == {"id": 123, "name": "Ada"}
    await cache_service.delete("user:123")
    assert await cache_service.get("user:123") is None


async def test_time_to_live_forms(cache_service: CacheService) -> None:
    session_data, value, config = {"s": 1}, {"v": 2}, {"c": 3}
    await cache_service.set("session:abc123", session_data, ttl=timedelta(minutes=30))
    await cache_service.set("temp_data", value)
    await cache_service.set("static_config", config, ttl=None)
    assert await cache_service.get("static_config") == config


async def test_namespaces_and_tags(cache_service: CacheService) -> None:
    user_profile, user_settings, product_data = {"p": 1}, {"s": 1}, {"d": 1}
    await cache_service.set("profile", user_profile, namespace="user:123")
    await cache_service.set("settings", user_settings, namespace="user:123")
    count = await cache_service.invalidate_namespace("user:123")
    assert count == 2
    await cache_service.set("product:456", product_data, tags=["products", "category:electronics"])
    await cache_service.set("product:789", product_data, tags=["products", "category:electronics"])
    count = await cache_service.invalidate_tags(["category:electronics"])
    assert count == 2


async def test_cache_aside_manual_and_get_or_set(cache_service: CacheService) -> None:
    db = FakeDB()

    async def fetch_profile_from_db(user_id: UUID) -> dict[str, Any]:
        return await db.fetch(user_id=str(user_id))

    async def get_user_profile_manual(user_id: UUID) -> dict[str, Any]:
        cached_value = await cache_service.get(f"profile:{user_id}")
        if cached_value is not None:
            return dict(cached_value)
        profile = await fetch_profile_from_db(user_id)
        await cache_service.set(f"profile:{user_id}", profile, ttl=timedelta(minutes=15))
        return profile

    async def get_user_profile(user_id: UUID) -> dict[str, Any]:
        return dict(
            await cache_service.get_or_set_async(
                key=f"profile:{user_id}",
                value_factory=lambda: fetch_profile_from_db(user_id),
                ttl=timedelta(minutes=15),
            )
        )

    user = uuid4()
    assert await get_user_profile_manual(user) == await get_user_profile(user)
    await get_user_profile(user)
    assert db.queries == 1


async def test_example_1_caching_database_queries(cache_service: CacheService) -> None:
    db = FakeDB()

    async def get_user(user_id: UUID) -> dict[str, Any] | None:
        cached_user = await cache_service.get(f"user:{user_id}", namespace="users")
        if cached_user:
            return dict(cached_user)
        user = await db.fetch(id=str(user_id))
        if user:
            await cache_service.set(
                f"user:{user_id}",
                user,
                ttl=timedelta(minutes=10),
                namespace="users",
                tags=["users"],
            )
        return user

    user_id = uuid4()
    assert await get_user(user_id) == await get_user(user_id) == {"id": str(user_id)}
    assert db.queries == 1


async def test_example_2_cached_decorator(cache_service: CacheService) -> None:
    calls = 0

    @cached(cache_service, ttl=timedelta(minutes=5))
    async def get_expensive_data(user_id: int) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)  # stands in for the spec's 2-second sleep
        return {"user_id": user_id, "data": "expensive result"}

    result = await get_expensive_data(123)
    result = await get_expensive_data(123)
    assert result == {"user_id": 123, "data": "expensive result"}
    assert calls == 1

    async def fetch_from_api(user_id: int, include_details: bool) -> dict[str, Any]:
        return {"id": user_id, "details": include_details}

    @cached(
        cache_service,
        ttl=timedelta(hours=1),
        key_func=lambda user_id, include_details: f"user-{user_id}-{include_details}",
    )
    async def get_user_data(user_id: int, include_details: bool = False) -> dict[str, Any]:
        return await fetch_from_api(user_id, include_details)

    assert await get_user_data(5) == {"id": 5, "details": False}
    assert await cache_service.exists("user-5-False")


async def test_example_4_cache_invalidation(cache_service: CacheService) -> None:
    user_id = uuid4()
    await cache_service.set(f"user:{user_id}", {"a": 1}, namespace="users")
    await cache_service.set("profile", {"a": 1}, namespace=f"user:{user_id}")
    await cache_service.set("card", {"a": 1}, tags=["user_profiles"])

    async def update_user_profile(user_id: UUID, profile_data: dict[str, Any]) -> dict[str, Any]:
        await cache_service.delete(f"user:{user_id}", namespace="users")
        await cache_service.invalidate_namespace(f"user:{user_id}")
        await cache_service.invalidate_tags(["user_profiles"])
        return {"success": True}

    assert await update_user_profile(user_id, {}) == {"success": True}
    assert (await cache_service.get_stats()).total_entries == 0


async def test_example_5_monitoring(cache_service: CacheService) -> None:
    await cache_service.set("a", 1)
    await cache_service.get("a")
    await cache_service.get("b")

    async def get_cache_stats() -> dict[str, Any]:
        stats = await cache_service.get_stats()
        return {
            "total_entries": stats.total_entries,
            "total_hits": stats.total_hits,
            "total_misses": stats.total_misses,
            "hit_rate": f"{stats.hit_rate:.2%}",
            "memory_usage_bytes": stats.memory_usage_bytes,
            "oldest_entry": stats.oldest_entry.isoformat() if stats.oldest_entry else None,
            "newest_entry": stats.newest_entry.isoformat() if stats.newest_entry else None,
        }

    report = await get_cache_stats()
    assert report["hit_rate"] == "50.00%"
    assert report["total_entries"] == 1
    assert report["oldest_entry"] is not None
    assert report["oldest_entry"].endswith("+00:00")


async def test_best_practice_variant_tags(cache_service: CacheService) -> None:
    product_id = 9
    for variant_id in range(5):
        await cache_service.set(
            f"variant:{variant_id}", {"v": variant_id}, tags=["products", f"product:{product_id}"]
        )
    assert await cache_service.invalidate_tags([f"product:{product_id}"]) == 5


async def test_memory_exhaustion_limits_and_cleanup() -> None:
    cache_service = create_cache(backend="memory", max_memory_items=10, default_ttl_seconds=1800)
    for i in range(25):
        await cache_service.set(f"k{i}", i)
    assert (await cache_service.get_stats()).total_entries == 10
    assert await cache_service.cleanup_expired() == 0
    await cache_service.close()


async def test_faq_stampede_lock(cache_service: CacheService) -> None:
    cache_locks: dict[str, asyncio.Lock] = {}
    calls = 0

    async def factory() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        return "value"

    async def get_with_lock(key: str, factory: Any) -> Any:
        cached_value = await cache_service.get(key)
        if cached_value:
            return cached_value
        if key not in cache_locks:
            cache_locks[key] = asyncio.Lock()
        async with cache_locks[key]:
            cached_value = await cache_service.get(key)
            if cached_value:
                return cached_value
            result = await factory()
            await cache_service.set(key, result)
            return result

    results = await asyncio.gather(*(get_with_lock("k", factory) for _ in range(10)))
    assert results == ["value"] * 10
    assert calls == 1


async def test_faq_pagination(cache_service: CacheService) -> None:
    db = FakeDB()

    async def get_products_page(page: int, page_size: int) -> Any:
        cache_key = f"products:page-{page}:size-{page_size}"
        cached_page = await cache_service.get(cache_key, namespace="products")
        if cached_page:
            return cached_page
        products = await db.fetch(page=page, size=page_size)
        await cache_service.set(
            cache_key, products, ttl=timedelta(minutes=5), namespace="products", tags=["products"]
        )
        return products

    await get_products_page(1, 10)
    await get_products_page(2, 10)
    await get_products_page(1, 10)
    assert db.queries == 2
    assert await cache_service.invalidate_tags(["products"]) == 2


async def test_faq_debugging(cache_service: CacheService) -> None:
    exists = await cache_service.exists("my_key")
    stats = await cache_service.get_stats()
    assert exists is False
    assert f"Hit rate: {stats.hit_rate:.2%}" == "Hit rate: 0.00%"
    await cache_service.set("my_key", 1)
    assert await cache_service.clear_all() == 1


async def test_faq_versioning(cache_service: CacheService) -> None:
    cache_version = "v2"
    await cache_service.set("user_data", {"a": 1}, namespace=f"{cache_version}:users")
    cache_version = "v3"
    assert await cache_service.get("user_data", namespace=f"{cache_version}:users") is None
    await cache_service.set(f"v2:user:{1}", {"a": 1})
    assert await cache_service.get("v2:user:1") == {"a": 1}
