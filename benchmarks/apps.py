"""The ASGI apps of the HTTP sections, each behind a factory uvicorn can call (`--factory`).

All serve GET /item with the same small JSON body. `APPS` lists them in table order with
what makes a second request a hit; apps built on parts of fastapi-cachekit that do not exist
yet say so through `unavailable()` and become "not available" rows.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["APPS", "BODY", "CALLS", "PATH", "AppSpec"]

PATH = "/item"
ITEM: dict[str, Any] = {"id": 1, "name": "product 000001"}
BODY = orjson.dumps(ITEM)
TTL_SECONDS = 60
Endpoint = Callable[[], Awaitable[dict[str, Any]]]
CALLS: Counter[str] = Counter()  # endpoint calls per app, to tell hits from misses in-process
_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]


async def _floor(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_floor_app() -> ASGIApp:
    """The floor: a pure ASGI app that sends constant JSON bytes."""
    return _floor


def _endpoint(counter: str) -> Endpoint:
    """The endpoint every FastAPI row serves; it counts its calls in CALLS[counter]."""

    async def item() -> dict[str, Any]:
        CALLS[counter] += 1
        return dict(ITEM)

    return item


def _fastapi_app(counter: str) -> FastAPI:
    app = FastAPI()
    app.get(PATH)(_endpoint(counter))
    return app


def make_fastapi_app() -> FastAPI:
    """A FastAPI endpoint returning a small dict, uncached."""
    return _fastapi_app("fastapi")


def make_fastapi_cache2_app() -> FastAPI:
    """The same endpoint under fastapi-cache2's `@cache` with its InMemoryBackend."""
    from fastapi_cache import FastAPICache
    from fastapi_cache.backends.inmemory import InMemoryBackend
    from fastapi_cache.decorator import cache

    FastAPICache.init(InMemoryBackend(), prefix="fastapi-cache")
    app = FastAPI()
    app.get(PATH)(cache(expire=TTL_SECONDS)(_endpoint("fastapi-cache2")))
    return app


def _cachekit_service() -> Any:
    from fastapi_cachekit import create_cache

    return create_cache(backend="memory", default_ttl_seconds=3600, serializer="json")


def _cachekit_name(name: str) -> Any:
    """`fastapi_cachekit.<name>`, or None while that part is not written yet."""
    try:
        module = importlib.import_module("fastapi_cachekit")
    except ImportError:
        return None
    return getattr(module, name, None)


def make_middleware_app() -> FastAPI:
    """The uncached endpoint behind fastapi-cachekit's CacheMiddleware in `ttl=60` mode."""
    middleware = _cachekit_name("CacheMiddleware")
    app = _fastapi_app("middleware")
    app.add_middleware(middleware, ttl=TTL_SECONDS, cache=_cachekit_service())
    return app


def make_cached_route_app() -> FastAPI:
    """The same endpoint under fastapi-cachekit's `@cached_route`."""
    cached_route: Callable[..., Callable[[Endpoint], Endpoint]] = _cachekit_name("cached_route")
    app = FastAPI()
    app.get(PATH)(cached_route(_cachekit_service(), ttl=TTL_SECONDS)(_endpoint("cached_route")))
    return app


def _needs(*names: str) -> Callable[[], str | None]:
    def unavailable() -> str | None:
        absent = [name for name in names if _cachekit_name(name) is None]
        return f"fastapi_cachekit.{', '.join(absent)} not available yet" if absent else None

    return unavailable


def _needs_package(module: str) -> Callable[[], str | None]:
    def unavailable() -> str | None:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"cannot import {module}: {exc}"
        return None

    return unavailable


def _always() -> str | None:
    return None


@dataclass(frozen=True)
class AppSpec:
    """One HTTP row: its app factory and how to tell that a response was a cache hit."""

    name: str
    factory: Callable[[], ASGIApp]
    unavailable: Callable[[], str | None] = _always
    hit_header: tuple[str, str] | None = None  # (header, text its value contains on a hit)
    counter: str | None = None  # for a cached row: its key in CALLS
    compare_with: str | None = None  # another row this one is also compared with

    @property
    def target(self) -> str:
        """The uvicorn `--factory` target."""
        return f"{__name__}:{self.factory.__name__}"


FLOOR = "floor: pure ASGI, constant bytes"
UNCACHED = "FastAPI endpoint, uncached"
APPS: list[AppSpec] = [
    AppSpec(FLOOR, make_floor_app),
    AppSpec(UNCACHED, make_fastapi_app),
    AppSpec(
        "fastapi-cache2 @cache hit",
        make_fastapi_cache2_app,
        _needs_package("fastapi_cache.decorator"),
        hit_header=("x-fastapi-cache", "HIT"),
        counter="fastapi-cache2",
        compare_with=UNCACHED,
    ),
    AppSpec(
        "cachekit CacheMiddleware hit (ttl=60)",
        make_middleware_app,
        _needs("CacheMiddleware"),
        hit_header=("cache-status", "hit"),
        counter="middleware",
    ),
    AppSpec(
        "cachekit @cached_route hit",
        make_cached_route_app,
        _needs("cached_route"),
        counter="cached_route",
        compare_with=UNCACHED,
    ),
]
