"""@cached_route and CacheMiddleware (in ttl mode) decide alike what is stored: both run
`decide_storage`. Each row is one response (and request); the second identical request must
be answered from the cache by both, or by neither."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Response

from fastapi_cachekit import CacheService
from fastapi_cachekit.fastapi.routes import cached_route

from .middleware_support import Harness, Origin

pytestmark = pytest.mark.usefixtures("http_backend")

# (id, status, response headers, request headers, stored)
TABLE = [
    ("plain", 200, {}, {}, True),
    ("max-age", 200, {"cache-control": "max-age=60"}, {}, True),
    ("public-404", 404, {}, {}, True),
    ("server-error", 500, {}, {}, False),
    ("partial", 206, {"content-range": "bytes 0-4/10"}, {}, False),
    ("set-cookie", 200, {"set-cookie": "s=1"}, {}, False),
    ("no-store", 200, {"cache-control": "no-store"}, {}, False),
    ("private", 200, {"cache-control": "private"}, {}, False),
    ("no-cache", 200, {"cache-control": "no-cache"}, {}, False),
    ("max-age-0", 200, {"cache-control": "max-age=0"}, {}, False),
    ("expired", 200, {"expires": "Thu, 01 Jan 1970 00:00:00 GMT"}, {}, False),
    ("vary-star", 200, {"vary": "*"}, {}, False),
    ("must-understand", 299, {"cache-control": "must-understand, no-store"}, {}, False),
    ("vary-language", 200, {"vary": "accept-language"}, {"accept-language": "fr"}, True),
    ("authorization", 200, {}, {"authorization": "Bearer a"}, False),
    ("cookie", 200, {}, {"cookie": "s=1"}, False),
    ("forwarded-host", 200, {}, {"x-forwarded-host": "evil.example"}, True),
]


def route_app(cache: CacheService, status: int, headers: dict[str, str]) -> FastAPI:
    app = FastAPI()
    calls: list[int] = []
    app.state.calls = calls

    @app.get("/r")
    @cached_route(cache, ttl=60)
    async def r() -> Response:
        calls.append(1)
        return Response(b"body", status_code=status, headers=headers)

    return app


async def served_by_route(status: int, headers: dict[str, str], request: dict[str, str]) -> bool:
    async with Harness(Origin().app) as h:  # for its service only
        app = route_app(h.cache, status, headers)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            await c.get("/r", headers=request)
            await c.get("/r", headers=request)
        return len(app.state.calls) == 1


async def served_by_middleware(
    status: int, headers: dict[str, str], request: dict[str, str]
) -> bool:
    origin = Origin(b"body", status=status, headers=list(headers.items()))
    async with Harness(origin.app, ttl=60) as h:
        await h.client.get("/r", headers=request)
        await h.client.get("/r", headers=request)
    return origin.calls == 1


@pytest.mark.parametrize(
    ("status", "headers", "request_headers", "stored"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
async def test_route_and_middleware_agree(
    status: int, headers: dict[str, str], request_headers: dict[str, str], stored: bool
) -> None:
    route = await served_by_route(status, headers, request_headers)
    middleware = await served_by_middleware(status, headers, request_headers)
    assert (route, middleware) == (stored, stored)
