"""Each example app is exercised through real HTTP calls (httpx ASGITransport)."""

from __future__ import annotations

import httpx
import pytest

from examples import app as demo


@pytest.fixture(autouse=True)
async def fresh_demo_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "SLOW_QUERY_SECONDS", 0.01)
    await demo.cache.clear_all()


async def test_demo_serves_the_second_request_from_the_cache() -> None:
    transport = httpx.ASGITransport(app=demo.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        first = await client.get("/products/1")
        second = await client.get("/products/1")
        stats = (await client.get("/cache/stats")).json()
    assert first.status_code == second.status_code == 200
    keyboard = {"id": 1, "name": "Keyboard", "price": 49.0}
    assert first.json()["product"] == second.json()["product"] == keyboard
    assert stats["total_hits"] == 1
    assert stats["total_misses"] == 1


async def test_demo_update_invalidates_the_cached_product() -> None:
    transport = httpx.ASGITransport(app=demo.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
        await client.get("/products/2")
        update = await client.post("/products/2/price", json={"price": 25.0})
        after = await client.get("/products/2")
        missing = await client.get("/products/99")
    assert update.json() == {"updated": True, "cache_entries_removed": 1}
    assert after.json()["product"]["price"] == 25.0
    assert missing.status_code == 404
