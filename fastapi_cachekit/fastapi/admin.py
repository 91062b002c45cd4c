"""The admin router: stats, invalidation and cleanup over HTTP, refused unless protected.

No `from __future__ import annotations` here: the endpoints are closures whose annotations
name a local alias, which FastAPI can only see if annotations are evaluated at definition.
"""

import hmac
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ConfigurationError, InvalidKeyError
from ..models import CacheStats
from ..service import CacheService
from ..settings import load_settings
from .dependencies import get_cache

__all__ = ["admin_router"]

_NO_STORE = {"Cache-Control": "no-store"}


class Removed(BaseModel):
    """How many entries an operation removed."""

    removed: int


class TagsBody(BaseModel):
    tags: list[str] = Field(description="Entries carrying any of these tags are removed.")


class PatternBody(BaseModel):
    pattern: str = Field(description="Glob over keys: *, ?, [a-z], [^a], \\ escapes.")
    namespace: str | None = Field(None, description="Only this namespace's entries.")


Confirm = Annotated[bool, Query(description="Required for operations that remove everything.")]


def admin_router(
    dependencies: Sequence[DependsParam] | None = None,
    allow_unauthenticated: bool = False,
    prefix: str = "/admin/cache",
    *,
    cache: CacheService | None = None,
) -> APIRouter:
    """An APIRouter with the cache's admin endpoints, mounted with `app.include_router`.

    It must be protected: by `dependencies` (your auth), by the `admin_token` setting
    (CACHEKIT_ADMIN_TOKEN; clients send `Authorization: Bearer <token>`), or both. Without
    either it is refused unless `allow_unauthenticated=True`. `cache` defaults to the app's.
    """
    token = load_settings().admin_token
    guards = list(dependencies or [])
    if token is not None:
        guards.append(Depends(_bearer_guard(token.get_secret_value())))
    if not guards and not allow_unauthenticated:
        raise ConfigurationError(
            "refusing to create an unprotected cache admin router: pass "
            "dependencies=[Depends(your_auth)], set CACHEKIT_ADMIN_TOKEN, or pass "
            "allow_unauthenticated=True if it is only reachable by admins"
        )
    router = APIRouter(
        prefix=prefix, tags=["cache-admin"], dependencies=guards, route_class=_NoStoreRoute
    )
    service = _service_dependency(cache)
    _add_routes(router, service)
    return router


def _service_dependency(cache: CacheService | None) -> Any:
    if cache is None:
        return Depends(get_cache)

    def fixed() -> CacheService:
        return cache

    return Depends(fixed)


def _bearer_guard(expected: str) -> Any:
    expected_bytes = expected.encode()

    def require_admin_token(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        valid = scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), expected_bytes
        )
        if not valid:
            raise HTTPException(
                status_code=401,
                detail="a valid admin token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_admin_token


class _NoStoreRoute(APIRoute):
    """A route whose answers, and the HTTPExceptions raised on the way (the caller's auth
    dependencies included), carry `Cache-Control: no-store`: admin data must not be cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def no_store(request: Request) -> Response:
            try:
                response = await handler(request)
            except StarletteHTTPException as exc:
                exc.headers = {**(exc.headers or {}), **_NO_STORE}
                raise
            response.headers.update(_NO_STORE)
            return response

        return no_store


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def _add_routes(router: APIRouter, service: Any) -> None:
    Cache = Annotated[CacheService, service]

    @router.get("/stats", response_model=CacheStats, summary="Cache statistics")
    async def stats(cache: Cache) -> CacheStats:
        return await cache.get_stats()

    @router.delete("/namespaces/{namespace}", response_model=Removed)
    async def invalidate_namespace(namespace: str, cache: Cache) -> Removed:
        return Removed(removed=await _checked(cache.invalidate_namespace(namespace)))

    @router.post("/invalidate/tags", response_model=Removed)
    async def invalidate_tags(body: TagsBody, cache: Cache, confirm: Confirm = False) -> Removed:
        if not body.tags and not confirm:
            raise _refuse("the tag list is empty; send at least one tag")
        return Removed(removed=await _checked(cache.invalidate_tags(body.tags)))

    @router.post("/invalidate/pattern", response_model=Removed)
    async def invalidate_pattern(
        body: PatternBody, cache: Cache, confirm: Confirm = False
    ) -> Removed:
        if not body.pattern:
            raise _refuse("the pattern is empty")
        if set(body.pattern) == {"*"} and not confirm:
            raise _refuse(f"pattern {body.pattern!r} matches everything; add ?confirm=true")
        removed = cache.invalidate_pattern(body.pattern, namespace=body.namespace)
        return Removed(removed=await _checked(removed))

    @router.delete("/keys/{key:path}", response_model=Removed)
    async def delete_key(key: str, cache: Cache, namespace: str | None = None) -> Removed:
        return Removed(removed=int(await _checked(cache.delete(key, namespace=namespace))))

    @router.post("/cleanup", response_model=Removed, summary="Remove expired entries now")
    async def cleanup(cache: Cache) -> Removed:
        return Removed(removed=await cache.cleanup_expired())

    @router.delete("", response_model=Removed, summary="Remove every entry (needs confirm)")
    @router.delete("/", response_model=Removed, include_in_schema=False)
    async def clear_all(cache: Cache, confirm: Confirm = False) -> Removed:
        if not confirm:
            raise _refuse("clearing the whole cache needs ?confirm=true")
        return Removed(removed=await cache.clear_all())


async def _checked(operation: Any) -> Any:
    """Await a cache call, turning invalid input into a 400 that says what was wrong."""
    try:
        return await operation
    except InvalidKeyError as exc:
        raise _refuse(str(exc)) from None
