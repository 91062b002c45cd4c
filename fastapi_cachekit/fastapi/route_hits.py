"""@cached_route's hits: finding a request's stored response and sending it back as it was.

A hit is looked up (`lookup`: the entry of the request's key whose Vary matches) and replayed
(`replay`: status, headers and body as stored, plus Cache-Status). Both run in the route's
wrapper for the first request, then in `HitShortcut`, the ASGI front put in place of the
route's handler, which answers hits before FastAPI solves the route's parameters (most of a
hit's cost). The front and the wrapper agree through two scope keys: `HIT` carries the
replayed response to the route's hit handler, `LOOKED_UP` tells the wrapper that a miss was
already looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..service import CacheService
from .dependencies import cache_for_app
from .http import StoredResponse, vary_matches
from .route_render import RouteFront, hit_handler

if TYPE_CHECKING:
    from .routes import CachedRoute

__all__ = ["HIT", "LOOKED_UP", "HitShortcut", "Replay", "lookup", "replay"]

LOOKED_UP = "fastapi_cachekit.route_looked_up"
"""Scope key: the shortcut already looked this request up (and counted the miss)."""
HIT = "fastapi_cachekit.route_hit"
"""Scope key: the stored response the shortcut found, for the route's hit handler to send."""


async def lookup(cached: CachedRoute, request: Request, key: str) -> StoredResponse | None:
    """The stored response for `key` that this request may get (its Vary matches)."""
    cache = cached.cache or cache_for_app(request.app)
    headers = request.scope["headers"]
    entry, _ = await cached.storage.read(cache, key, headers)
    return entry if entry is not None and vary_matches(entry.vary, headers) else None


def replay(
    cached: CachedRoute, cache: CacheService, scope: Scope, entry: StoredResponse
) -> Response:
    """A hit: the stored response as it was sent (with Cache-Status)."""
    response = Replay(entry)
    cached.telling.hit(cache, scope, response)
    return response


class Replay(Response):
    """A stored response sent as it was: status, headers and body as stored."""

    def __init__(self, entry: StoredResponse) -> None:
        # Response.__init__ would render and compute headers again; all is stored already.
        self.status_code = entry.status
        self.body = entry.body
        self.raw_headers = list(entry.headers)
        self.background = None


class HitShortcut(RouteFront):
    """The ASGI app in front of a cached route: it looks each cacheable request up before
    FastAPI solves the route's parameters. A hit is sent straight from the cache when nothing
    must run first: no dependency left after `skip_on_hit`, and no `key_func` (the default
    key covers every input FastAPI validates, so a request that would fail validation never
    has the key of one that passed). Otherwise the hit goes through the route's hit handler,
    which validates and runs those dependencies (auth) before sending it. Anything else goes
    on to FastAPI's handler, marked as already looked up."""

    def __init__(self, app: ASGIApp, route: Any, cached: CachedRoute) -> None:
        super().__init__(app, route)
        self.cached = cached
        self.hits = hit_handler(
            route, cached.signature, cached.request_name, cached.skipped, _stored_response
        )
        self.direct = cached.key_func is None and not self.hits.runs_dependencies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cached = self.cached
        if scope["type"] == "http" and cached.cacheable(scope):
            request = Request(scope)
            try:
                key = cached.key(request)
            except Exception:  # a key_func failing on a request FastAPI would refuse
                await self.app(scope, receive, send)
                return
            entry = await lookup(cached, request, key)
            if entry is not None:
                response = replay(cached, cached.cache or cache_for_app(request.app), scope, entry)
                if self.direct:
                    await response(scope, receive, send)
                else:
                    scope[HIT] = response
                    await self.hits.app(scope, receive, send)
                return
            scope[LOOKED_UP] = True
        await self.app(scope, receive, send)


def _stored_response(request: Request) -> Response:
    """What the hit handler sends: the stored response the shortcut found."""
    response: Response = request.scope[HIT]
    return response
