"""The middleware's events: one per client request, told where its Cache-Status is written.

Kinds: "hit" (a fresh stored response), "stale_served" (stale-while-revalidate, or stale on
an app failure), "revalidated" (the app confirmed the stored response with a 304),
"coalesced" (answered from another request's fetch: single flight), "stored" / "not_stored"
(the request went to the app; `reason` says why it went, or why its response was not kept),
"miss" (nothing usable and the app may not be asked: `only-if-cached`).

An event is named by the route's path template (`/items/{item_id}`), never the raw path, so
that a metric labelled by it stays bounded. On a hit the app is not entered, so the template
is found by matching the app's routes, once per path: the memo is bounded (cleared when full),
and a path no route matches is named "<unmatched>".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Scope

from ...events import CacheEvent, EventKind
from .store import Runtime

__all__ = ["UNMATCHED", "RouteTemplates", "tell"]

UNMATCHED = "<unmatched>"
"""The template of a request no route matches."""

_MEMO_MAX_PATHS = 1024


class RouteTemplates:
    """The path template of a request's route, by matching the app's routes (memoised)."""

    __slots__ = ("_memo",)

    def __init__(self) -> None:
        self._memo: dict[str, str] = {}

    def of(self, scope: Scope, inner: ASGIApp) -> str:
        """The template of `scope`'s route: the routes of the request's app (Starlette
        puts it in the scope), or of `inner`, the app the middleware wraps (when the
        middleware is the outermost app)."""
        path: str = scope["path"]
        template = self._memo.get(path)
        if template is None:
            app = scope.get("app", inner)
            routes = getattr(getattr(app, "router", app), "routes", ())
            template = _match(routes, scope, "") or UNMATCHED
            if len(self._memo) >= _MEMO_MAX_PATHS:
                self._memo.clear()  # cheaper than LRU upkeep; hot paths come straight back
            self._memo[path] = template
        return template


def _match(routes: Iterable[Any], scope: Scope, prefix: str) -> str | None:
    """The template of the route the router would pick: the first full match, else the
    first partial one (a path whose route takes other methods)."""
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = _match(route.routes, {**scope, **child}, prefix + route.path)
            if inner is not None:
                return inner
            continue
        template = prefix + str(getattr(route, "path", ""))
        if match is Match.FULL:
            return template
        partial = partial or template
    return partial


def tell(
    rt: Runtime, scope: Scope, kind: EventKind, reason: str | None = None, key: str | None = None
) -> None:
    """Tell the service's observers one request's outcome (nothing when there are none)."""
    emit = rt.cache.emit
    if emit is not None:
        emit(CacheEvent(kind, "http", rt.templates.of(scope, rt.app), reason, key=key))
