"""The admin router: endpoints, protection, refusals, no-store, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from fastapi_cachekit import CacheService, ConfigurationError
from fastapi_cachekit.fastapi.admin import admin_router
from fastapi_cachekit.fastapi.dependencies import setup_cache
from tests.backend_kinds import new_backend

pytestmark = pytest.mark.usefixtures("http_backend")


def require_admin(x_admin: str = Header("")) -> None:
    if x_admin != "yes":
        raise HTTPException(status_code=403)


@pytest.fixture
def cache() -> CacheService:
    return CacheService(new_backend())


@pytest.fixture
async def client(cache: CacheService) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    setup_cache(app, cache)
    app.include_router(admin_router(dependencies=[Depends(require_admin)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"x-admin": "yes"}
    ) as client:
        yield client


async def test_stats_has_the_spec_fields(client: httpx.AsyncClient, cache: CacheService) -> None:
    await cache.set("a", 1)
    await cache.get("a")
    await cache.get("b")
    response = await client.get("/admin/cache/stats")
    body = response.json()
    assert response.status_code == 200
    assert body["total_entries"] == 1
    assert (body["total_hits"], body["total_misses"]) == (1, 1)
    assert body["hit_rate"] == 0.5
    assert isinstance(body["memory_usage_bytes"], int)
    assert body["oldest_entry"].endswith("Z") or "+00:00" in body["oldest_entry"]
    assert response.headers["cache-control"] == "no-store"


async def test_invalidation_endpoints_report_removed(
    client: httpx.AsyncClient, cache: CacheService
) -> None:
    await cache.set("profile", 1, namespace="user:1")
    await cache.set("p1", 1, tags=["products"])
    await cache.set("page:1", 1)
    await cache.set("page:2", 1)
    await cache.set("a/b", 1, namespace="files")
    response = await client.delete("/admin/cache/namespaces/user:1?confirm=true")
    assert response.json() == {"removed": 1}
    response = await client.post("/admin/cache/invalidate/tags", json={"tags": ["products"]})
    assert response.json() == {"removed": 1}
    response = await client.post("/admin/cache/invalidate/pattern", json={"pattern": "page:*"})
    assert response.json() == {"removed": 2}
    response = await client.delete("/admin/cache/keys/a/b", params={"namespace": "files"})
    assert response.json() == {"removed": 1}
    response = await client.delete("/admin/cache/keys/a/b", params={"namespace": "files"})
    assert response.json() == {"removed": 0}
    assert (await cache.get_stats()).total_entries == 0


async def test_cleanup_and_confirmed_clear(client: httpx.AsyncClient, cache: CacheService) -> None:
    await cache.set("a", 1)
    assert (await client.post("/admin/cache/cleanup")).json() == {"removed": 0}
    refused = await client.delete("/admin/cache")
    assert refused.status_code == 400
    assert "confirm=true" in refused.json()["detail"]
    assert refused.headers["cache-control"] == "no-store"
    assert await cache.exists("a")
    assert (await client.delete("/admin/cache?confirm=true")).json() == {"removed": 1}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/cache/invalidate/tags", {"tags": []}),
        ("/admin/cache/invalidate/pattern", {"pattern": ""}),
        ("/admin/cache/invalidate/pattern", {"pattern": "*"}),
        ("/admin/cache/invalidate/pattern", {"pattern": "**"}),
        # No literal character: each of these can match every key.
        ("/admin/cache/invalidate/pattern", {"pattern": "?*"}),
        ("/admin/cache/invalidate/pattern", {"pattern": "*?"}),
        ("/admin/cache/invalidate/pattern", {"pattern": "[a-z]*"}),
        ("/admin/cache/invalidate/pattern", {"pattern": "[^:]*"}),
        ("/admin/cache/invalidate/pattern", {"pattern": "?"}),
    ],
)
async def test_sweeping_requests_need_confirmation(
    client: httpx.AsyncClient, cache: CacheService, path: str, body: dict[str, object]
) -> None:
    await cache.set("a", 1)
    response = await client.post(path, json=body)
    assert response.status_code == 400
    assert response.headers["cache-control"] == "no-store"
    assert await cache.exists("a")


@pytest.mark.parametrize("pattern", ["*", "?*", "[a-z]*"])
async def test_sweeping_pattern_with_confirmation(
    client: httpx.AsyncClient, cache: CacheService, pattern: str
) -> None:
    await cache.set("a", 1)
    response = await client.post(
        "/admin/cache/invalidate/pattern?confirm=true", json={"pattern": pattern}
    )
    assert response.json() == {"removed": 1}


async def test_pattern_with_a_literal_needs_no_confirmation(
    client: httpx.AsyncClient, cache: CacheService
) -> None:
    await cache.set("page:1", 1)
    await cache.set("other", 1)
    response = await client.post("/admin/cache/invalidate/pattern", json={"pattern": "*:?"})
    assert response.json() == {"removed": 1}
    assert await cache.exists("other")


async def test_removing_a_namespace_needs_confirmation(
    client: httpx.AsyncClient, cache: CacheService
) -> None:
    await cache.set("profile", 1, namespace="user:1")
    refused = await client.delete("/admin/cache/namespaces/user:1")
    assert refused.status_code == 400
    assert "confirm=true" in refused.json()["detail"]
    assert await cache.exists("profile", namespace="user:1")
    confirmed = await client.delete("/admin/cache/namespaces/user:1?confirm=true")
    assert confirmed.json() == {"removed": 1}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/admin/cache/invalidate/tags", {"tag": "x"}),
        ("/admin/cache/invalidate/tags", {"tags": "x"}),
        ("/admin/cache/invalidate/pattern", {}),
    ],
)
async def test_bad_bodies_are_422(
    client: httpx.AsyncClient, path: str, body: dict[str, object]
) -> None:
    response = await client.post(path, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"
    assert response.headers["cache-control"] == "no-store"


async def test_invalid_namespace_is_400_with_reason(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/admin/cache/invalidate/pattern", json={"pattern": "a*", "namespace": "bad\tns"}
    )
    assert response.status_code == 400
    assert "control character" in response.json()["detail"]


async def test_dependencies_guard_every_endpoint(cache: CacheService) -> None:
    app = FastAPI()
    setup_cache(app, cache)
    app.include_router(admin_router(dependencies=[Depends(require_admin)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = [
            await client.get("/admin/cache/stats"),
            await client.delete("/admin/cache?confirm=true"),
        ]
    assert [response.status_code for response in refused] == [403, 403]
    # The refusal comes from the caller's dependency, and is not to be cached either.
    assert [response.headers.get("cache-control") for response in refused] == ["no-store"] * 2


def test_unprotected_router_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHEKIT_ADMIN_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="allow_unauthenticated=True"):
        admin_router()
    assert admin_router(allow_unauthenticated=True).prefix == "/admin/cache"


def test_openapi_lists_the_admin_tag_with_models(cache: CacheService) -> None:
    app = FastAPI()
    app.include_router(admin_router(allow_unauthenticated=True, cache=cache))
    schema = app.openapi()
    stats = schema["paths"]["/admin/cache/stats"]["get"]
    assert stats["tags"] == ["cache-admin"]
    assert stats["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CacheStats"
    }
    assert "Removed" in schema["components"]["schemas"]
