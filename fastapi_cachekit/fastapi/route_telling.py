"""What @cached_route says about each request: its Cache-Status header (RFC 9211, as the
middleware's) and one event for the service's observers (layer "route"), named by the route's
path template, never the raw path."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Scope

from ..events import CacheEvent, EventKind
from ..service import CacheService
from .http import DEFAULT_CACHE_NAME, CacheStatus
from .middleware import UNMATCHED

__all__ = ["RouteTelling"]


class RouteTelling:
    """Cache-Status (unless `cache_status=False`) and events for one cached route."""

    __slots__ = ("status",)

    def __init__(self, cache_status: bool | str) -> None:
        name = DEFAULT_CACHE_NAME if cache_status is True else cache_status
        self.status = CacheStatus(name) if isinstance(name, str) else None
        """None: no header (the events are told all the same)."""

    def hit(self, cache: CacheService, scope: Scope, response: Response) -> None:
        """A response replayed from the cache. It carries no ttl: a route's entry lives by
        its backend TTL, which a hit does not read."""
        _tell(cache, scope, "hit", None)
        if self.status is not None:
            response.raw_headers.append((b"cache-status", self.status.hit_without_ttl))

    def forwarded(
        self, cache: CacheService, scope: Scope, response: Response, why_not: str | None
    ) -> None:
        """A response the endpoint made: stored, or not (`why_not`)."""
        if why_not is None:
            _tell(cache, scope, "stored", "uri-miss")
        else:
            _tell(cache, scope, "not_stored", why_not)
        if self.status is not None:
            status = self.status.forward("uri-miss", stored=why_not is None)
            response.raw_headers.append((b"cache-status", status))

    def bypassed(self, cache: CacheService | None, scope: Scope, sub_response: Response) -> None:
        """A request the cache leaves alone (credentials, a method other than GET/HEAD).
        FastAPI copies the injected response's headers unless the endpoint returns a
        Response; `cache` is None while the app has none (nothing to tell). The event is a
        `bypass` on layer "route" with reason "request", told apart by both from the service's
        bypasses (the cache turned off: reason "read", "write" or "fill")."""
        if self.status is not None:
            sub_response.headers.append("cache-status", self.status.forward("bypass").decode())
        if cache is not None:
            _tell(cache, scope, "bypass", "request")


def _tell(cache: CacheService, scope: Scope, kind: EventKind, reason: str | None) -> None:
    emit = cache.emit
    if emit is not None:
        route = scope.get("route")
        template = getattr(route, "path", None) if route is not None else None
        emit(CacheEvent(kind, "route", template or UNMATCHED, reason))
