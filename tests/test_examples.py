"""Each example app is exercised through real HTTP calls (httpx ASGITransport): the demo on
the memory backend, and its Redis and hybrid variants on the session's own redis-server."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from types import ModuleType

import httpx
import pytest

from examples import app as demo

EXAMPLES = [
    "examples.app",
    pytest.param("examples.redis_app", marks=pytest.mark.redis),
    pytest.param("examples.hybrid_app", marks=pytest.mark.redis),
]


@pytest.fixture(params=EXAMPLES)
async def example(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ModuleType]:
    name = str(request.param)
    if name != "examples.app":
        request.getfixturevalue("clean_redis")
        monkeypatch.setenv("CACHEKIT_REDIS_URL", request.getfixturevalue("redis_url"))
    module = importlib.reload(importlib.import_module(name))
    monkeypatch.setattr(demo, "SLOW_QUERY_SECONDS", 0.01)
    monkeypatch.setattr(demo, "DATABASE", dict(demo.DATABASE))
    cache = module.app.state.cachekit
    await cache.clear_all()
    yield module
    await cache.close()


def client_for(module: ModuleType) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=module.app)
    return httpx.AsyncClient(transport=transport, base_url="http://demo")


async def test_the_second_request_is_served_from_the_cache(example: ModuleType) -> None:
    async with client_for(example) as client:
        first = await client.get("/products/1")
        second = await client.get("/products/1")
        stats = await client.get("/admin/cache/stats", headers={"x-admin-token": "demo"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()  # the route's stored response, byte for byte
    assert first.json()["product"] == {"id": 1, "name": "Keyboard", "price": 49.0}
    assert stats.json()["total_hits"] >= 1


async def test_the_catalog_is_cached_whole_by_the_middleware(example: ModuleType) -> None:
    async with client_for(example) as client:
        miss = await client.get("/catalog")
        hit = await client.get("/catalog")
    assert miss.headers["cache-status"].endswith("stored")
    assert hit.headers["cache-status"].startswith("fastapi-cachekit; hit")
    assert hit.json() == miss.json()


async def test_an_update_invalidates_the_product_and_the_catalog(example: ModuleType) -> None:
    async with client_for(example) as client:
        await client.get("/products/2")
        await client.get("/catalog")
        update = await client.post("/products/2/price", json={"price": 25.0})
        product = await client.get("/products/2")
        catalog = await client.get("/catalog")
        missing = await client.get("/products/99")
    assert update.json()["cache_entries_removed"] == 3  # the query, the route, the catalog
    assert product.json()["product"]["price"] == 25.0
    assert {"id": 2, "name": "Mouse", "price": 25.0} in catalog.json()
    assert missing.status_code == 404


async def test_the_admin_router_needs_the_token(example: ModuleType) -> None:
    async with client_for(example) as client:
        refused = await client.get("/admin/cache/stats")
        cleared = await client.delete(
            "/admin/cache?confirm=true", headers={"x-admin-token": "demo"}
        )
    assert refused.status_code == 403
    assert cleared.status_code == 200
