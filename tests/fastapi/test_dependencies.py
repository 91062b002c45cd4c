"""setup_cache, get_cache and the lifespan hook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastapi_cachekit import CacheService, ConfigurationError, MemoryBackend
from fastapi_cachekit.fastapi.dependencies import get_cache, setup_cache


def app_with_counter() -> FastAPI:
    app = FastAPI()

    @app.get("/count")
    async def count(cache: CacheService = Depends(get_cache)) -> dict[str, int]:
        value = (await cache.get("count", default=0)) + 1
        await cache.set("count", value)
        return {"count": value}

    return app


async def test_get_cache_returns_the_registered_service() -> None:
    app = app_with_counter()
    service = setup_cache(app, CacheService(MemoryBackend()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/count")).json() == {"count": 1}
        assert (await client.get("/count")).json() == {"count": 2}
    assert await service.get("count") == 2


async def test_setup_cache_builds_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_DEFAULT_NAMESPACE", "fromenv")
    app = app_with_counter()
    service = setup_cache(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/count")
    assert await service.get("count", namespace="fromenv") == 1
    await service.close()


async def test_get_cache_without_setup_makes_one_from_the_environment() -> None:
    app = app_with_counter()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/count")).json() == {"count": 1}
    assert isinstance(app.state.cachekit, CacheService)
    await app.state.cachekit.close()


async def test_get_cache_error_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_BACKEND", "redis")  # but no CACHEKIT_REDIS_URL
    app = app_with_counter()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        with pytest.raises(ConfigurationError, match=r"CACHEKIT_REDIS_URL.*setup_cache\(app\)"):
            await client.get("/count")


async def test_lifespan_closes_the_service_it_created_and_keeps_the_users() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def user_lifespan(app: FastAPI) -> AsyncIterator[None]:
        events.append("user start")
        yield
        events.append("user stop")

    app = FastAPI(lifespan=user_lifespan)
    service = setup_cache(app)
    await service.set("k", 1)
    async with app.router.lifespan_context(app):
        events.append("serving")
    assert events == ["user start", "serving", "user stop"]
    assert service._lifetime.closed


async def test_lifespan_only_flushes_a_service_it_was_given() -> None:
    app = FastAPI()
    service = setup_cache(app, CacheService(MemoryBackend()))
    await service.get("absent")
    async with app.router.lifespan_context(app):
        pass
    assert not service._lifetime.closed
    assert (await service.backend.stats()).misses == 1
    await service.close()
