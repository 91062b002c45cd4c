"""An app with every cache layer and a /metrics route, for the metrics tests: `@cached_route`
at /items/{item_id}, `CacheMiddleware` over /pages/*, `@cached` behind /squares/{n}, the
admin router (open: tests only) and `setup_metrics`. Every answer names the worker's pid.

`build_app()` makes one in process; `uvicorn tests.observers.metrics_app:app --workers 2`
serves the one built at import from CACHEKIT_* variables (PROMETHEUS_MULTIPROC_DIR set).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fastapi_cachekit import (
    CacheMiddleware,
    CacheService,
    admin_router,
    cached,
    cached_route,
    setup_cache,
)
from fastapi_cachekit.fastapi.metrics import setup_metrics
from fastapi_cachekit.observers.prometheus import PrometheusObserver

__all__ = ["WorkerPid", "build_app"]


class WorkerPid:
    """Adds `x-worker-pid` to every answer, outside the cache (a hit carries the answering
    worker's pid, not the one that stored it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message["headers"],
                    (b"x-worker-pid", str(os.getpid()).encode()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_pid)


def build_app(
    cache: CacheService | None = None, observer: PrometheusObserver | None = None
) -> FastAPI:
    app = FastAPI()
    service = setup_cache(app, cache)

    @cached(service, ttl=300, namespace="squares")
    async def square(n: int) -> int:
        return n * n

    @app.get("/items/{item_id}")
    @cached_route(ttl=300)
    async def item(item_id: int) -> dict[str, Any]:
        return {"item": item_id}

    @app.get("/pages/{page}")
    async def page(page: int, response: Response) -> dict[str, Any]:
        response.headers["cache-control"] = "max-age=300"
        return {"page": page}

    @app.get("/squares/{n}")
    async def squares(n: int) -> dict[str, int]:
        return {"square": await square(n)}

    app.include_router(admin_router(allow_unauthenticated=True))
    setup_metrics(app, observer=observer)
    app.add_middleware(CacheMiddleware, include=["/pages/*"])
    app.add_middleware(WorkerPid)
    return app


app = build_app() if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else None
