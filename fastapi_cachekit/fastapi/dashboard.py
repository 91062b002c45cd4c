"""The admin dashboard: a static page at the admin router's prefix and its protected data.

The page, its script and its stylesheet (package data in `static/`) hold no data, so they are
served to anyone, without the router's guards: a browser cannot send a bearer token when it
navigates. Every number comes from `GET {prefix}/dashboard/data`, an ordinary admin endpoint
behind the same guards as the rest of the API; the page's forms call the existing admin
endpoints, so their confirm rules are the API's own.

No `from __future__ import annotations` here, for the reason given in `admin.py`.
"""

import os
import time
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from ..backends.base import LabelCounting
from ..backends.memory import MemoryBackend
from ..backends.redis import CircuitBreaker
from ..errors import BackendError
from ..models import CacheStats
from ..service import CacheService
from .dashboard_state import HitHistory, Invalidated, RecentInvalidations

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "Dashboard",
    "DashboardData",
    "add_dashboard",
    "breaker_of",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""No inline script or style, no other origin, no framing: the page's whole policy."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_ASSETS = {  # URL path after the prefix -> (file in static/, media type)
    "/": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard/app.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard/app.css": ("dashboard.css", "text/css; charset=utf-8"),
}


class LabelCount(BaseModel):
    name: str
    entries: int


class BreakerState(BaseModel):
    state: str
    failures: int
    rejections: int


class Sample(BaseModel):
    at: float
    hits: int
    misses: int


class DashboardData(BaseModel):
    """Everything the dashboard shows, in one answer."""

    at: float
    pid: int
    refresh_seconds: float
    history_minutes: float
    shared_totals: bool
    stats: CacheStats
    history: list[Sample]
    namespaces: list[LabelCount] | None
    tags: list[LabelCount] | None
    labels_complete: bool
    breaker: BreakerState | None
    recent: list[Invalidated]
    watching_since: float | None


class Dashboard:
    """The dashboard's settings and memory: pass one as `admin_router(dashboard=...)`.

    The page polls every `sample_seconds`; the hit ratio chart covers `history_minutes`;
    the `recent` last invalidations and the `top_labels` largest namespaces and tags are
    listed. The recent invalidations are heard from the moment the data is first asked for
    (an observer is added to the service then, not before: until someone looks, the
    service's hot paths pay nothing for the dashboard).
    """

    def __init__(
        self,
        *,
        history_minutes: float = 15.0,
        sample_seconds: float = 5.0,
        recent: int = 50,
        top_labels: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.history = HitHistory(history_minutes, sample_seconds, clock)
        self.recent = RecentInvalidations(recent, clock)
        self.top_labels = top_labels
        self._clock = clock

    async def data(self, cache: CacheService) -> DashboardData:
        cache.add_observer(self.recent)  # once: a second add is ignored
        self.recent.started()
        stats = await cache.get_stats()
        samples = self.history.sample(stats.total_hits, stats.total_misses)
        namespaces, tags, complete = await self._labels(cache)
        return DashboardData(
            at=self._clock(),
            pid=os.getpid(),
            refresh_seconds=self.history.sample_seconds,
            history_minutes=self.history.minutes,
            # Every worker's totals (Redis, hybrid), so the page may merge their samples.
            shared_totals=not isinstance(cache.backend, MemoryBackend),
            stats=stats,
            history=[Sample(at=at, hits=hits, misses=misses) for at, hits, misses in samples],
            namespaces=namespaces,
            tags=tags,
            labels_complete=complete,
            breaker=_breaker(cache),
            recent=self.recent.latest(),
            watching_since=self.recent.since,
        )

    async def _labels(
        self, cache: CacheService
    ) -> tuple[list[LabelCount] | None, list[LabelCount] | None, bool]:
        backend = cache.backend
        if not isinstance(backend, LabelCounting):
            return None, None, False
        try:
            counts = await backend.label_counts(self.top_labels)
        except BackendError:  # shown as "cannot tell"; the stats say whether Redis is down
            return None, None, False
        namespaces = [LabelCount(name=n, entries=c) for n, c in counts.namespaces]
        tags = [LabelCount(name=n, entries=c) for n, c in counts.tags]
        return namespaces, tags, counts.complete


def breaker_of(cache: CacheService) -> CircuitBreaker | None:
    """This process's Redis circuit breaker (a Redis or hybrid backend's `breaker`), or None
    when the backend has none (memory). `setup_metrics` reports it too."""
    breaker = getattr(cache.backend, "breaker", None)
    return breaker if isinstance(breaker, CircuitBreaker) else None


def _breaker(cache: CacheService) -> BreakerState | None:
    breaker = breaker_of(cache)
    if breaker is None:
        return None
    return BreakerState(
        state=breaker.state, failures=breaker.failures, rejections=breaker.rejections
    )


def add_dashboard(router: APIRouter, service: Any, dashboard: Dashboard) -> None:
    """Add the page and its assets (unguarded) and its data endpoint (guarded) to `router`."""
    Cache = Annotated[CacheService, service]

    @router.get(
        "/dashboard/data", response_model=DashboardData, summary="The admin dashboard's numbers"
    )
    async def dashboard_data(cache: Cache) -> DashboardData:
        return await dashboard.data(cache)  # no-store and nosniff: the router's route class

    # Plain Starlette routes: the router's dependencies (its guards) do not apply to them,
    # and its prefix is not added, so the full path is given.
    prefix = router.prefix
    for path, (name, media_type) in _ASSETS.items():
        router.add_route(prefix + path, _asset(name, media_type), ["GET"], include_in_schema=False)
    if prefix:  # "/admin/cache" -> "cache/": the page's relative URLs need the slash
        target = prefix.rsplit("/", 1)[-1] + "/"
        router.add_route(prefix, _redirect(target), ["GET"], include_in_schema=False)


def _asset(name: str, media_type: str) -> Callable[[Request], Any]:
    body = (resources.files(__package__) / "static" / name).read_bytes()

    async def serve(request: Request) -> Response:
        return Response(body, media_type=media_type, headers=SECURITY_HEADERS)

    return serve


def _redirect(target: str) -> Callable[[Request], Any]:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(target, status_code=308, headers=SECURITY_HEADERS)

    return redirect
