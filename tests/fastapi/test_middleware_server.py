"""CacheMiddleware behind a real uvicorn server on loopback: concurrent clients, one app run."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI, Response

from fastapi_cachekit import CacheService
from fastapi_cachekit.fastapi.dependencies import setup_cache
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from tests.backend_kinds import new_backend
from tests.fastapi.uvicorn_task import uvicorn_in_task

CLIENTS = 50

pytestmark = pytest.mark.usefixtures("http_backend")


def make_app() -> tuple[FastAPI, list[int]]:
    app = FastAPI()
    calls: list[int] = []

    @app.get("/report")
    async def report(response: Response) -> dict[str, object]:
        calls.append(1)
        await asyncio.sleep(0.3)  # slow enough that every client arrives while it runs
        response.headers["cache-control"] = "max-age=60"
        return {"rows": list(range(100)), "calls": len(calls)}

    setup_cache(app, CacheService(new_backend()))
    app.add_middleware(CacheMiddleware)
    return app, calls


async def test_concurrent_clients_through_uvicorn_run_the_app_once() -> None:
    app, calls = make_app()
    limits = httpx.Limits(max_connections=CLIENTS)
    async with (
        uvicorn_in_task(app, lifespan="on", ws="none") as url,
        httpx.AsyncClient(base_url=url, limits=limits) as client,
    ):
        responses = await asyncio.gather(*(client.get("/report") for _ in range(CLIENTS)))
    assert len(calls) == 1
    assert all(response.status_code == 200 for response in responses)
    assert len({response.content for response in responses}) == 1
    assert responses[0].json()["calls"] == 1
    statuses = [response.headers["cache-status"] for response in responses]
    assert statuses.count("fastapi-cachekit; fwd=uri-miss; stored") == 1
    assert all("collapsed" in s or "stored" in s or "; hit" in s for s in statuses)
