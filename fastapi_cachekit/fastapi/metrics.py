"""A ready `/metrics` route for Prometheus: the cache's events as counters, its stats as gauges.

Needs the `prometheus` extra. Open by default, as Prometheus endpoints usually are (served on
an internal port or network); `token=` makes it require `Authorization: Bearer <token>`
(Prometheus' `authorization: {credentials: ...}` scrape setting), `dependencies=` runs your
own checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.params import Depends as DependsParam
from starlette.responses import Response

from ..errors import ConfigurationError
from ..observers.prometheus import PrometheusObserver, default_observer
from ..service import CacheService
from ..settings import check_admin_token
from .admin import _bearer_guard
from .dashboard import breaker_of
from .dependencies import registered_cache

__all__ = ["metrics_router", "setup_metrics"]


def setup_metrics(
    app: Any,
    cache: CacheService | None = None,
    *,
    observer: PrometheusObserver | None = None,
    path: str = "/metrics",
    token: str | None = None,
    dependencies: Sequence[DependsParam] = (),
) -> PrometheusObserver:
    """Count `cache`'s events (default: the app's, from `setup_cache`) with `observer` and
    serve them at `path`. The default observer is the process's one on prometheus-client's
    default registry (`default_observer()`), shared by every app built in the process."""
    service = registered_cache(app) if cache is None else cache
    if service is None:
        raise ConfigurationError(
            "setup_metrics(app) found no cache on the app: call setup_cache(app) first, "
            "or pass cache="
        )
    observer = default_observer() if observer is None else observer
    app.include_router(
        metrics_router(service, observer, path=path, token=token, dependencies=dependencies)
    )
    return observer


def metrics_router(
    cache: CacheService,
    observer: PrometheusObserver,
    *,
    path: str = "/metrics",
    token: str | None = None,
    dependencies: Sequence[DependsParam] = (),
) -> APIRouter:
    """A router serving `observer`'s metrics at `path`; `observer` is added to `cache`.

    Each scrape first sets the gauges from `cache.get_stats()`. The answer is `no-store`,
    and the route stays out of the OpenAPI schema.
    """
    guards = list(dependencies)
    if token is not None:
        try:
            check_admin_token(token)
        except ValueError as exc:
            raise ConfigurationError(f"metrics token: {exc}") from None
        guards.append(Depends(_bearer_guard(token)))
    cache.add_observer(observer)
    router = APIRouter(dependencies=guards)

    @router.get(path, include_in_schema=False)
    async def metrics() -> Response:
        stats = await cache.get_stats()
        observer.record_stats(stats, breaker_open=_breaker_open(cache))
        body, media_type = observer.render()
        return Response(body, media_type=media_type, headers={"Cache-Control": "no-store"})

    return router


def _breaker_open(cache: CacheService) -> bool | None:
    """Whether this process's Redis circuit breaker refuses calls (None: no Redis)."""
    breaker = breaker_of(cache)
    return None if breaker is None else breaker.state != "closed"
