"""The admin router's bearer token: where it comes from, what is refused, what OpenAPI says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException

from fastapi_cachekit import CacheService, ConfigurationError, create_cache
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.fastapi.admin import admin_router
from fastapi_cachekit.fastapi.dependencies import setup_cache

TOKEN = "s3cret-token-0123456789"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CACHEKIT_ADMIN_TOKEN", raising=False)


def require_admin(x_admin: str = Header("")) -> None:
    if x_admin != "yes":
        raise HTTPException(status_code=403)


async def serve(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def app_with(router_cache: CacheService | None = None, **router_options: Any) -> FastAPI:
    app = FastAPI()
    setup_cache(app, router_cache or CacheService(MemoryBackend()))
    app.include_router(admin_router(cache=router_cache, **router_options))
    return app


@pytest.fixture
async def env_client(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("CACHEKIT_ADMIN_TOKEN", TOKEN)
    async for client in serve(app_with()):
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},  # nothing after the scheme
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer nope"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": TOKEN},
    ],
)
async def test_requests_without_the_token_get_401(
    env_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for response in [
        await env_client.get("/admin/cache/stats", headers=headers),
        await env_client.delete("/admin/cache?confirm=true", headers=headers),
    ]:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["cache-control"] == "no-store"


async def test_the_token_opens_the_router(env_client: httpx.AsyncClient) -> None:
    response = await env_client.get("/admin/cache/stats", headers=BEARER)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "is empty"),
        ("   ", "is empty"),
        ("short-token", "11 characters long, shorter than the minimum of 16"),
        ("a long token with spaces", "contains whitespace"),
    ],
)
def test_unusable_tokens_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, token: str, reason: str
) -> None:
    # An unset ${VAR} in a compose file gives "": that must not open the router to
    # `Authorization: Bearer ` with nothing after it.
    monkeypatch.setenv("CACHEKIT_ADMIN_TOKEN", token)
    for build in (admin_router, create_cache):
        with pytest.raises(
            ConfigurationError, match=rf"admin_token \(CACHEKIT_ADMIN_TOKEN\).*{reason}"
        ):
            build()
    monkeypatch.delenv("CACHEKIT_ADMIN_TOKEN")
    with pytest.raises(ConfigurationError, match=reason):
        create_cache(admin_token=token)
    with pytest.raises(ConfigurationError, match=reason):
        CacheService(MemoryBackend(), admin_token=token)


async def test_the_token_comes_from_the_service_settings() -> None:
    cache = create_cache(backend="memory", admin_token=TOKEN)
    async for client in serve(app_with(cache)):
        assert (await client.get("/admin/cache/stats")).status_code == 401
        assert (await client.get("/admin/cache/stats", headers=BEARER)).status_code == 200


async def test_the_services_token_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CACHEKIT_ADMIN_TOKEN", "environment-token-0123456789")
    cache = CacheService(MemoryBackend(), admin_token=TOKEN)
    async for client in serve(app_with(cache)):
        environment = {"Authorization": "Bearer environment-token-0123456789"}
        assert (await client.get("/admin/cache/stats", headers=environment)).status_code == 401
        assert (await client.get("/admin/cache/stats", headers=BEARER)).status_code == 200


async def test_token_and_dependencies_both_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_ADMIN_TOKEN", TOKEN)
    async for client in serve(app_with(dependencies=[Depends(require_admin)])):
        token_only = await client.get("/admin/cache/stats", headers=BEARER)
        both = await client.get("/admin/cache/stats", headers={**BEARER, "x-admin": "yes"})
    assert token_only.status_code == 403
    assert token_only.headers["cache-control"] == "no-store"
    assert both.status_code == 200


def test_openapi_declares_the_bearer_scheme_and_the_refusals() -> None:
    schema = app_with(CacheService(MemoryBackend(), admin_token=TOKEN)).openapi()
    scheme = schema["components"]["securitySchemes"]["CacheAdminToken"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    takes_input = {
        "/admin/cache/stats": False,
        "/admin/cache/cleanup": False,
        "/admin/cache/dashboard/data": False,
    }
    operations = [
        (path, operation) for path, item in schema["paths"].items() for operation in item.values()
    ]
    assert len(operations) == 8  # the dashboard's page and assets are not API operations
    for path, operation in operations:
        assert operation["security"] == [{"CacheAdminToken": []}], path
        assert {"401", "403"} <= set(operation["responses"]), path
        # Only operations without input or confirm cannot answer 400.
        assert ("400" in operation["responses"]) is takes_input.get(path, True), path
