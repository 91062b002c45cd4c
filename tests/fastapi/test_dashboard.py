"""The admin dashboard over HTTP: a public static page, guarded data, strict headers.

The page in a real browser is tested in test_dashboard_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.events import CacheEvent
from fastapi_cachekit.fastapi.admin import admin_router
from fastapi_cachekit.fastapi.dashboard import CONTENT_SECURITY_POLICY, Dashboard
from fastapi_cachekit.fastapi.dashboard_state import HitHistory, RecentInvalidations
from fastapi_cachekit.fastapi.dependencies import setup_cache
from tests.backend_kinds import new_backend
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

TOKEN = "dashboard-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
PAGES = {
    "/admin/cache/": "text/html",
    "/admin/cache/dashboard/app.js": "text/javascript",
    "/admin/cache/dashboard/app.css": "text/css",
}


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHEKIT_ADMIN_TOKEN", raising=False)


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def app_for(cache: CacheService, **options: Any) -> FastAPI:
    app = FastAPI()
    setup_cache(app, cache)
    app.include_router(admin_router(cache=cache, **options))
    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache() -> AsyncIterator[CacheService]:
    async with CacheService(MemoryBackend(), admin_token=TOKEN) as service:
        yield service


@pytest.fixture
async def client(cache: CacheService, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(app_for(cache, dashboard=Dashboard(clock=clock))):
        yield client


async def test_the_page_and_its_assets_are_public_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    for path, media_type in PAGES.items():
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(media_type)
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY


async def test_the_prefix_without_a_slash_redirects_to_the_page(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/admin/cache")
    assert response.status_code == 308
    assert response.headers["location"] == "cache/"  # relative: works behind a path prefix


class _Inline(HTMLParser):
    """Collects what a strict policy would block: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "style" or (tag == "script" and "src" not in names):
            self.found.append(tag)
        self.found += [name for name in names if name == "style" or name.startswith("on")]


def _static(name: str) -> str:
    return (resources.files("fastapi_cachekit.fastapi") / "static" / name).read_text()


def test_the_page_has_no_inline_code_and_the_script_never_writes_html() -> None:
    parser = _Inline()
    parser.feed(_static("dashboard.html"))
    assert parser.found == []
    script = _static("dashboard.js")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)
    assert "localStorage" not in script  # the token stays in the tab (sessionStorage)


async def test_the_data_needs_the_token(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
        response = await client.get("/admin/cache/dashboard/data", headers=headers)
        assert response.status_code == 401
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "stats" not in response.text


async def test_the_data_shows_the_traffic_and_the_invalidations(
    client: httpx.AsyncClient, cache: CacheService, clock: FakeClock
) -> None:
    first = (await client.get("/admin/cache/dashboard/data", headers=BEARER)).json()
    assert first["stats"]["total_hits"] == 0
    assert first["recent"] == []

    hostile = "<script>alert(1)</script>"
    await cache.set("a", 1, namespace="users", tags=["t1", hostile])
    await cache.set("b", 2, namespace="users", tags=["t1"])
    await cache.get("a", namespace="users")
    await cache.get("missing")
    await cache.invalidate_tags(["t1"])
    await cache.set("c", 3, namespace="orders", tags=[hostile])
    clock.advance(5)

    response = await client.get("/admin/cache/dashboard/data", headers=BEARER)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    data = response.json()
    assert (data["stats"]["total_hits"], data["stats"]["total_misses"]) == (1, 1)
    assert data["stats"]["total_entries"] == 1
    assert [(s["hits"], s["misses"]) for s in data["history"]] == [(0, 0), (1, 1)]
    assert data["namespaces"] == [{"name": "orders", "entries": 1}]
    assert data["tags"] == [{"name": hostile, "entries": 1}]
    assert data["breaker"] is None  # no Redis
    assert data["shared_totals"] is False  # this process's totals: the page does not merge
    [recent] = data["recent"]
    assert (recent["kind"], recent["count"], recent["at"]) == ("tags", 2, clock.now - 5)


async def test_samples_are_taken_at_most_once_per_interval(clock: FakeClock) -> None:
    history = HitHistory(minutes=1, sample_seconds=5, clock=clock)
    assert history.sample(1, 0) == [(clock.now, 1, 0)]
    clock.advance(4)
    assert len(history.sample(2, 0)) == 1  # too soon: not taken
    for _ in range(20):
        clock.advance(5)
        history.sample(3, 1)
    samples = history.sample(3, 1)
    assert len(samples) == 13  # one minute of 5-second samples, and the newest
    assert samples[-1] == (clock.now, 3, 1)


def test_the_ring_keeps_only_the_last_invalidations(clock: FakeClock) -> None:
    recent = RecentInvalidations(size=2, clock=clock)
    recent.event(CacheEvent("hit", "memory", "ns"))
    recent.event(CacheEvent("invalidation", "service", None, reason="expired", count=0))
    for count in (1, 2, 3):
        recent.event(CacheEvent("invalidation", "service", "ns", reason="namespace", count=count))
    assert [(item.count, item.seq) for item in recent.latest()] == [(3, 3), (2, 2)]
    recent.event(CacheEvent("invalidation", "service", None, reason="expired", count=4))
    assert [(item.kind, item.count) for item in recent.latest()] == [
        ("expired", 4),
        ("namespace", 3),
    ]


async def test_nobody_observes_the_service_until_the_data_is_asked_for(
    client: httpx.AsyncClient, cache: CacheService
) -> None:
    assert cache.observers == ()
    await client.get("/admin/cache/", headers=BEARER)
    assert cache.observers == ()
    await client.get("/admin/cache/dashboard/data", headers=BEARER)
    assert len(cache.observers) == 1
    await client.get("/admin/cache/dashboard/data", headers=BEARER)
    assert len(cache.observers) == 1


def require_admin(x_admin: str = Header("")) -> None:
    if x_admin != "yes":
        raise HTTPException(status_code=403, detail="admins only")


async def test_a_router_guarded_by_the_apps_auth_serves_the_page_and_guards_the_data() -> None:
    app = FastAPI()
    setup_cache(app, CacheService(MemoryBackend()))
    app.include_router(admin_router(dependencies=[Depends(require_admin)]))
    async for client in client_for(app):
        assert (await client.get("/admin/cache/")).status_code == 200
        refused = await client.get("/admin/cache/dashboard/data")
        assert refused.status_code == 403
        allowed = await client.get("/admin/cache/dashboard/data", headers={"x-admin": "yes"})
        assert allowed.status_code == 200
        assert allowed.json()["stats"]["total_entries"] == 0


async def test_the_dashboard_can_be_left_out(cache: CacheService) -> None:
    async for client in client_for(app_for(cache, dashboard=False)):
        assert (await client.get("/admin/cache/")).status_code != 200
        assert (await client.get("/admin/cache/dashboard/data", headers=BEARER)).status_code == 404


@pytest.mark.usefixtures("http_backend")
async def test_redis_backends_show_their_breaker_and_label_counts(http_backend: str) -> None:
    async with CacheService(new_backend(), admin_token=TOKEN) as cache:
        await cache.set("k", 1, namespace="ns", tags=["t"])
        async for client in client_for(app_for(cache)):
            data = (await client.get("/admin/cache/dashboard/data", headers=BEARER)).json()
    assert data["namespaces"] == [{"name": "ns", "entries": 1}]
    assert data["tags"] == [{"name": "t", "entries": 1}]
    expected = None if http_backend == "memory" else "closed"
    assert (data["breaker"] or {}).get("state") == expected
    assert data["shared_totals"] is (http_backend != "memory")


@pytest.mark.redis
async def test_the_data_is_served_while_redis_is_down(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, socket_timeout=0.1, connect_timeout=0.1)
    async with CacheService(backend, admin_token=TOKEN) as cache:
        await cache.set("k", 1, namespace="ns", tags=["t"])
        redis_server.stop()
        async for client in client_for(app_for(cache)):
            response = await client.get("/admin/cache/dashboard/data", headers=BEARER)
    assert response.status_code == 200
    data = response.json()
    assert data["breaker"]["state"] == "open"
    assert data["stats"]["errors"] >= 1
    assert (data["namespaces"], data["tags"]) == (None, None)  # "cannot tell" on the page
