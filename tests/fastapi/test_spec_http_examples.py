"""The spec's HTTP examples as written (Example 3: @cached_route; Example 5: a stats
endpoint), with `app.kits["cache"].service` replaced by the service create_cache returns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from fastapi_cachekit import cached_route, create_cache


async def test_example_3_caching_fastapi_routes() -> None:
    app_fastapi = FastAPI()
    cache_service = create_cache(backend="memory")
    queries = []

    async def fetch_product(product_id: int) -> dict[str, Any]:
        queries.append(product_id)
        return {"id": product_id, "name": "Lamp"}

    @app_fastapi.get("/products/{product_id}")
    @cached_route(
        cache_service,
        ttl=timedelta(minutes=15),
        namespace="api",
        key_func=lambda req: f"product-{req.path_params['product_id']}",
    )
    async def get_product(product_id: int):  # type: ignore[no-untyped-def]
        # Expensive database query or API call
        product = await fetch_product(product_id)
        return {"product": product}

    transport = httpx.ASGITransport(app=app_fastapi)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/products/456")
        second = await client.get("/products/456")
    assert first.json() == second.json() == {"product": {"id": 456, "name": "Lamp"}}
    assert queries == [456]
    assert await cache_service.exists("product-456", namespace="api")
    await cache_service.close()


async def test_example_5_monitoring_cache_performance() -> None:
    app = FastAPI()
    cache_service = create_cache(backend="memory")
    await cache_service.set("a", 1)
    await cache_service.get("a")
    await cache_service.get("b")

    @app.get("/admin/cache/stats")
    async def get_cache_stats():  # type: ignore[no-untyped-def]
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

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        body = (await client.get("/admin/cache/stats")).json()
    assert body["total_entries"] == 1
    assert (body["total_hits"], body["total_misses"]) == (1, 1)
    assert body["hit_rate"] == "50.00%"
    assert body["oldest_entry"].endswith("+00:00")
    await cache_service.close()
