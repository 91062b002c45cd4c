"""The app of the Date tests, importable by a server in another process: CacheMiddleware in
front of one cacheable endpoint, on a FakeClock that `POST /clock/<seconds>` advances."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fastapi_cachekit import CacheService
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from tests.backend_kinds import new_backend
from tests.clock import FakeClock

T0 = 1_700_000_000.0


async def page(request: Request) -> Response:
    return Response(b"page", headers={"cache-control": "max-age=600"})


async def advance(request: Request) -> Response:
    request.app.state.clock.advance(float(request.path_params["seconds"]))
    return Response(b"", status_code=204)


def make_app(*, server_date: bool = True) -> CacheMiddleware:
    clock = FakeClock(T0)
    app = Starlette(
        routes=[Route("/page", page), Route("/clock/{seconds}", advance, methods=["POST"])]
    )
    app.state.clock = clock
    cache = CacheService(new_backend(clock))
    return CacheMiddleware(app, cache=cache, clock=clock, server_date=server_date)
