"""Each example app is exercised through real HTTP calls (httpx ASGITransport): the demo on
the memory backend, and its Redis and hybrid variants on the session's own redis-server; and
the Redis demo under a real uvicorn with two workers, which must agree on every answer."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from benchmarks.net import free_port, wait_for_port
from examples import app as demo

ROOT = Path(__file__).resolve().parents[1]
ADMIN = {"authorization": f"Bearer {demo.DEMO_ADMIN_TOKEN}"}
EXAMPLES = [
    "examples.app",
    pytest.param("examples.redis_app", marks=pytest.mark.redis),
    pytest.param("examples.hybrid_app", marks=pytest.mark.redis),
]


@pytest.fixture(params=EXAMPLES)
async def example(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[ModuleType]:
    name = str(request.param)
    if name != "examples.app":
        request.getfixturevalue("clean_redis")
        monkeypatch.setenv("CACHEKIT_REDIS_URL", request.getfixturevalue("redis_url"))
    monkeypatch.delenv("CACHEKIT_ADMIN_TOKEN", raising=False)
    monkeypatch.setenv("DEMO_DATABASE", str(tmp_path / "demo.sqlite3"))
    module = importlib.reload(importlib.import_module(name))
    monkeypatch.setattr(demo, "SLOW_QUERY_SECONDS", 0.01)
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
        stats = await client.get("/admin/cache/stats", headers=ADMIN)
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
        missing_update = await client.post("/products/99/price", json={"price": 1.0})
    assert update.json()["cache_entries_removed"] == 3  # the query, the route, the catalog
    assert product.json()["product"]["price"] == 25.0
    assert {"id": 2, "name": "Mouse", "price": 25.0} in catalog.json()
    assert missing.status_code == missing_update.status_code == 404


async def test_the_admin_router_takes_the_caches_own_bearer_token(example: ModuleType) -> None:
    async with client_for(example) as client:
        refused = await client.get("/admin/cache/stats")
        wrong = await client.get("/admin/cache/stats", headers={"authorization": "Bearer x"})
        cleared = await client.delete("/admin/cache?confirm=true", headers=ADMIN)
    assert refused.status_code == wrong.status_code == 401
    assert cleared.status_code == 200


# --- two uvicorn workers share the cache and the database --------------------------------


@pytest.fixture
def two_workers(redis_url: str, clean_redis: object, tmp_path: Path) -> Iterator[str]:
    """`uvicorn examples.redis_app:app --workers 2` on a free port; its base URL."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if "CACHEKIT_" not in name}
    env |= {
        "CACHEKIT_REDIS_URL": redis_url,
        "DEMO_DATABASE": str(tmp_path / "demo.sqlite3"),
        "DEMO_SLOW_QUERY_SECONDS": "0",
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-m", "uvicorn", "examples.redis_app:app", "--workers", "2"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with open(tmp_path / "uvicorn.log", "wb") as log:
        server = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, 30, alive=lambda: server.poll() is None)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own process group: uvicorn and workers
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def fresh(method: str, url: str, **kwargs: object) -> httpx.Response:
    """One request on its own connection, so that either worker may accept it."""
    with httpx.Client(headers={"connection": "close"}) as client:
        return client.request(method, url, **kwargs)  # type: ignore[arg-type]


@pytest.mark.redis
def test_every_worker_answers_with_the_price_another_worker_wrote(two_workers: str) -> None:
    update = fresh("POST", f"{two_workers}/products/2/price", json={"price": 31.0})
    writer = update.headers["x-demo-worker"]
    prices: dict[str, float] = {}
    for _ in range(200):  # until both workers have computed the product themselves
        forget = fresh("POST", f"{two_workers}/admin/cache/invalidate/tags", headers=ADMIN,
                       json={"tags": ["products", "product:2"]})  # fmt: skip
        assert forget.status_code == 200
        answer = fresh("GET", f"{two_workers}/products/2")
        prices[answer.headers["x-demo-worker"]] = answer.json()["product"]["price"]
        if len(prices) == 2:
            break
    assert len(prices) == 2, f"only worker {list(prices)} answered"
    assert writer in prices
    assert set(prices.values()) == {31.0}
