"""Logs: one logger per layer, structured fields (`extra`), and never a value, a raw key, a
raw path or the admin token; fault warnings stay rate limited."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cachekit import CacheService, MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.events import key_hash
from fastapi_cachekit.fastapi.admin import admin_router
from fastapi_cachekit.fastapi.dependencies import setup_cache
from fastapi_cachekit.fastapi.routes import cached_route
from fastapi_cachekit.keys import storage_key
from fastapi_cachekit.observers.logging import LoggingObserver
from tests.redis_servers import RedisServer

SECRET_VALUE = "value-that-must-never-be-logged"
PRIVATE_KEY = "user:alice@example.com"


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("fastapi_cachekit")]


def everything_logged(records: list[logging.LogRecord]) -> str:
    """Each record's message and every attribute value, as text."""
    return "\n".join(f"{r.getMessage()} {vars(r)!r}" for r in records)


async def test_events_are_logged_per_layer_with_fields_and_without_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastapi_cachekit")
    async with CacheService(MemoryBackend(), observers=LoggingObserver()) as cache:
        await cache.set(PRIVATE_KEY, SECRET_VALUE, namespace="users")
        assert await cache.get(PRIVATE_KEY, namespace="users") == SECRET_VALUE
        await cache.invalidate_namespace("users")
    records = ours(caplog)
    by_outcome = {r.cache_outcome: r for r in records}  # type: ignore[attr-defined]
    assert list(by_outcome) == ["stored", "hit", "invalidation"]
    hit = by_outcome["hit"]
    assert hit.name == "fastapi_cachekit.memory"
    assert hit.cache_namespace == "users"  # type: ignore[attr-defined]
    assert by_outcome["stored"].cache_key_hash == key_hash(storage_key(PRIVATE_KEY, "users"))  # type: ignore[attr-defined]
    invalidation = by_outcome["invalidation"]
    assert invalidation.name == "fastapi_cachekit.service"
    assert invalidation.cache_count == 1  # type: ignore[attr-defined]
    assert invalidation.cache_duration_ms >= 0  # type: ignore[attr-defined]
    logged = everything_logged(records)
    assert SECRET_VALUE not in logged
    assert "alice" not in logged


async def test_a_logging_observer_can_keep_to_some_kinds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fastapi_cachekit")
    observer = LoggingObserver(logging.INFO, kinds=["invalidation"])
    async with CacheService(MemoryBackend(), observers=observer) as cache:
        await cache.set("a", 1, tags=["t"])
        await cache.get("a")
        await cache.invalidate_tags(["t"])
    assert [r.cache_outcome for r in ours(caplog)] == ["invalidation"]  # type: ignore[attr-defined]


async def test_route_events_log_the_template_not_the_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="fastapi_cachekit")
    cache = CacheService(MemoryBackend(), observers=LoggingObserver())
    app = FastAPI()

    @app.get("/users/{email}")
    @cached_route(cache, ttl=60)
    async def user(email: str) -> dict[str, str]:
        return {"email": email}

    transport = httpx.ASGITransport(app=app)
    async with cache, httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/users/alice@example.com")
        await client.get("/users/alice@example.com")
    http = [r for r in ours(caplog) if r.name == "fastapi_cachekit.http"]
    assert [(r.cache_outcome, r.cache_namespace) for r in http] == [  # type: ignore[attr-defined]
        ("stored", "/users/{email}"),
        ("hit", "/users/{email}"),
    ]
    assert "alice" not in everything_logged(ours(caplog))


async def test_a_wrong_admin_token_is_logged_without_any_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    token, wrong = "the-real-admin-token-0123456789", "the-real-admin-token-0123456788"
    cache = CacheService(MemoryBackend(), admin_token=token)
    app = FastAPI()
    setup_cache(app, cache)
    app.include_router(admin_router(cache=cache))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.get(
            "/admin/cache/stats", headers={"Authorization": f"Bearer {wrong}"}
        )
    assert refused.status_code == 401
    (record,) = [r for r in ours(caplog) if r.name == "fastapi_cachekit.admin"]
    assert record.levelno == logging.WARNING
    logged = everything_logged(ours(caplog))
    assert token not in logged
    assert wrong not in logged


@pytest.mark.redis
async def test_faults_log_once_per_burst_on_the_layer_loggers(
    caplog: pytest.LogCaptureFixture, redis_server: RedisServer
) -> None:
    caplog.set_level(logging.WARNING, logger="fastapi_cachekit")
    backend = RedisBackend(redis_server.url, socket_timeout=0.1, connect_timeout=0.1)
    async with CacheService(backend) as cache:
        await cache.set(PRIVATE_KEY, SECRET_VALUE)
        redis_server.stop()
        for _ in range(5):
            assert await cache.get(PRIVATE_KEY) is None
    faults = [r for r in ours(caplog) if "cache fault" in r.getMessage()]
    assert len(faults) == 1
    assert faults[0].name == "fastapi_cachekit.service"
    assert faults[0].cache_outcome == "fault"  # type: ignore[attr-defined]
    breaker = [r for r in ours(caplog) if r.name == "fastapi_cachekit.redis"]
    assert [r.cache_outcome for r in breaker] == ["breaker_open"]  # type: ignore[attr-defined]
    assert "(ConnectionError: " in breaker[0].getMessage()  # why it opened
    logged = everything_logged(ours(caplog))
    assert SECRET_VALUE not in logged
    assert "alice" not in logged
