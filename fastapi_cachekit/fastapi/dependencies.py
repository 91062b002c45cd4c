"""Wiring a CacheService into a FastAPI app: setup_cache, get_cache and the lifespan hook."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from ..errors import ConfigurationError
from ..factory import create_cache
from ..service import CacheService

__all__ = ["cache_for_app", "get_cache", "registered_cache", "setup_cache"]

_STATE_ATTR = "cachekit"
_LIFESPAN_ATTR = "cachekit_lifespan"

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def setup_cache(app: Any, cache: CacheService | None = None) -> CacheService:
    """Register `cache` (default: one built from CACHEKIT_* settings) on `app`.

    The service connects lazily, so the app works without a lifespan run. On shutdown the
    app's lifespan flushes the service's counters, and closes it if it was created here; a
    lifespan the app already has keeps running around it. Calling it again replaces the
    service without wrapping the lifespan again.
    """
    created = cache is None
    service = create_cache() if cache is None else cache
    setattr(app.state, _STATE_ATTR, service)
    hook = getattr(app.state, _LIFESPAN_ATTR, None)
    if not isinstance(hook, _CacheLifespan):
        hook = _CacheLifespan(app.router.lifespan_context)
        setattr(app.state, _LIFESPAN_ATTR, hook)
        app.router.lifespan_context = hook
    hook.service = service
    if created:
        hook.owned.append(service)
    return service


class _CacheLifespan:
    """The app's lifespan, wrapped once: on shutdown it flushes the current service and
    closes the services setup_cache created."""

    def __init__(self, inner: Lifespan) -> None:
        self.inner = inner
        self.service: CacheService | None = None
        self.owned: list[CacheService] = []

    @asynccontextmanager
    async def __call__(self, app: Any) -> AsyncIterator[Any]:
        async with self.inner(app) as state:
            try:
                yield state
            finally:
                if self.service is not None and self.service not in self.owned:
                    await self.service.flush()
                for service in self.owned:
                    await service.close()


def registered_cache(app: object) -> CacheService | None:
    """The service `setup_cache` registered on `app`, if any (nothing is built)."""
    return getattr(getattr(app, "state", None), _STATE_ATTR, None)


def cache_for_app(app: ASGIApp) -> CacheService:
    """The app's CacheService; one is built from the environment and registered if missing."""
    state = getattr(app, "state", None)
    if state is None:
        raise ConfigurationError(
            "no cache service: this app has no `state`; pass cache=... explicitly"
        )
    service = getattr(state, _STATE_ATTR, None)
    if service is None:
        try:
            service = setup_cache(app)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"the app has no cache service and none can be made from the environment: "
                f"{exc}. Call setup_cache(app) at startup, or fix the CACHEKIT_* settings"
            ) from exc
    if not isinstance(service, CacheService):
        raise ConfigurationError(f"app.state.{_STATE_ATTR} is not a CacheService")
    return service


def get_cache(connection: HTTPConnection) -> CacheService:
    """FastAPI dependency: `cache: CacheService = Depends(get_cache)`."""
    return cache_for_app(connection.app)
