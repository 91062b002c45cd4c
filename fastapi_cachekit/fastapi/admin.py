"""The admin router: stats, invalidation and cleanup over HTTP, refused unless protected.

No `from __future__ import annotations` here: the endpoints are closures whose annotations
name a local alias, which FastAPI can only see if annotations are evaluated at definition.
"""

import hmac
import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, SecretStr
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from ..errors import ConfigurationError, InvalidKeyError
from ..keys import GlobPattern
from ..models import CacheStats
from ..service import CacheService
from ..settings import MIN_ADMIN_TOKEN_LENGTH, load_settings
from .dashboard import Dashboard, add_dashboard
from .dependencies import get_cache

__all__ = ["admin_router"]

logger = logging.getLogger("fastapi_cachekit.admin")

_NO_STORE = {"Cache-Control": "no-store"}


class Removed(BaseModel):
    """How many entries an operation removed."""

    removed: int


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


class TagsBody(BaseModel):
    tags: list[str] = Field(description="Entries carrying any of these tags are removed.")


class PatternBody(BaseModel):
    pattern: str = Field(description="Glob over keys: *, ?, [a-z], [^a], \\ escapes.")
    namespace: str | None = Field(None, description="Only this namespace's entries.")


Confirm = Annotated[
    bool,
    Query(description="Required for operations that can remove everything, or a whole namespace."),
]

_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No valid admin token (Authorization: Bearer)."},
    403: {"model": Problem, "description": "Refused by the router's auth dependencies."},
}
_BAD_INPUT: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Invalid input, or a sweep without confirm=true."}
}
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="CacheAdminToken",
    description=f"The admin_token setting (CACHEKIT_ADMIN_TOKEN), at least "
    f"{MIN_ADMIN_TOKEN_LENGTH} characters.",
)


def admin_router(
    dependencies: Sequence[DependsParam] | None = None,
    allow_unauthenticated: bool = False,
    prefix: str = "/admin/cache",
    *,
    cache: CacheService | None = None,
    dashboard: Dashboard | bool = True,
) -> APIRouter:
    """An APIRouter with the cache's admin endpoints, mounted with `app.include_router`.

    It must be protected: by `dependencies` (your auth), by the `admin_token` setting
    (clients send `Authorization: Bearer <token>`), or both. Without either it is refused
    unless `allow_unauthenticated=True`. `cache` defaults to the app's. The token is
    `cache`'s (`create_cache(admin_token=...)`), else CACHEKIT_ADMIN_TOKEN's.

    `dashboard`: the page at `{prefix}/` (a static page, public; its data endpoint is
    guarded like the rest), configured by a `Dashboard`, or left out with False.
    """
    token = _admin_token(cache)
    guards = list(dependencies or [])
    if token is not None:
        guards.append(Depends(_bearer_guard(token.get_secret_value())))
    if not guards and not allow_unauthenticated:
        raise ConfigurationError(
            "refusing to create an unprotected cache admin router: pass "
            "dependencies=[Depends(your_auth)], set the admin_token setting "
            "(CACHEKIT_ADMIN_TOKEN, or create_cache(admin_token=...) passed as cache=), or pass "
            "allow_unauthenticated=True if it is only reachable by admins"
        )
    router = APIRouter(
        prefix=prefix,
        tags=["cache-admin"],
        dependencies=guards,
        route_class=_NoStoreRoute,
        responses=_REFUSED,
    )
    service = _service_dependency(cache)
    _add_routes(router, service)
    if dashboard is not False:
        add_dashboard(router, service, dashboard if dashboard is not True else Dashboard())
    return router


def _admin_token(cache: CacheService | None) -> SecretStr | None:
    if cache is not None and cache.admin_token is not None:
        return cache.admin_token
    return load_settings().admin_token


def _service_dependency(cache: CacheService | None) -> Any:
    if cache is None:
        return Depends(get_cache)

    def fixed() -> CacheService:
        return cache

    return Depends(fixed)


def _bearer_guard(expected: str) -> Any:
    expected_bytes = expected.encode()

    def require_admin_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> None:
        given = b"" if credentials is None else credentials.credentials.encode()
        if not hmac.compare_digest(given, expected_bytes):
            # Never the token given (a near miss of the real one), nor the expected one.
            logger.warning(
                "refused an admin request without a valid token",
                extra={"cache_outcome": "refused"},
            )
            raise HTTPException(
                status_code=401,
                detail="a valid admin token is required (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return require_admin_token


class _NoStoreRoute(APIRoute):
    """A route whose every answer carries `Cache-Control: no-store`: its own, the
    HTTPExceptions of the caller's auth dependencies, FastAPI's 422s, a 405. Admin data and
    refusals must not be cached by anything between the admin and the app. They carry
    `X-Content-Type-Options: nosniff` too: JSON holding user-chosen names (tags) must never
    be sniffed as HTML."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["cache-control"] = "no-store"
                headers["x-content-type-options"] = "nosniff"
            await send(message)

        try:
            await super().handle(scope, receive, send_no_store)
        except StarletteHTTPException as exc:  # a 405, left to the app's exception handlers
            exc.headers = {**(exc.headers or {}), **_NO_STORE}
            raise


def _refuse(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def _add_routes(router: APIRouter, service: Any) -> None:
    Cache = Annotated[CacheService, service]

    @router.get("/stats", response_model=CacheStats, summary="Cache statistics")
    async def stats(cache: Cache) -> CacheStats:
        return await cache.get_stats()

    @router.delete(
        "/namespaces/{namespace}",
        response_model=Removed,
        responses=_BAD_INPUT,
        summary="Remove a namespace's entries (needs confirm)",
    )
    async def invalidate_namespace(
        namespace: str, cache: Cache, confirm: Confirm = False
    ) -> Removed:
        if not confirm:
            raise _refuse(f"removing namespace {namespace!r} needs ?confirm=true")
        return Removed(removed=await _checked(cache.invalidate_namespace(namespace)))

    @router.post("/invalidate/tags", response_model=Removed, responses=_BAD_INPUT)
    async def invalidate_tags(body: TagsBody, cache: Cache, confirm: Confirm = False) -> Removed:
        if not body.tags and not confirm:
            raise _refuse("the tag list is empty; send at least one tag")
        return Removed(removed=await _checked(cache.invalidate_tags(body.tags)))

    @router.post(
        "/invalidate/pattern",
        response_model=Removed,
        responses=_BAD_INPUT,
        summary="Remove the entries whose keys match a glob (a sweep needs confirm)",
    )
    async def invalidate_pattern(
        body: PatternBody, cache: Cache, confirm: Confirm = False
    ) -> Removed:
        if not _compiled(body.pattern).has_literal and not confirm:
            raise _refuse(
                f"pattern {body.pattern!r} has no literal character, so it can match every "
                "key; add ?confirm=true to remove them all"
            )
        removed = cache.invalidate_pattern(body.pattern, namespace=body.namespace)
        return Removed(removed=await _checked(removed))

    @router.delete("/keys/{key:path}", response_model=Removed, responses=_BAD_INPUT)
    async def delete_key(key: str, cache: Cache, namespace: str | None = None) -> Removed:
        return Removed(removed=int(await _checked(cache.delete(key, namespace=namespace))))

    @router.post("/cleanup", response_model=Removed, summary="Remove expired entries now")
    async def cleanup(cache: Cache) -> Removed:
        return Removed(removed=await cache.cleanup_expired())

    @router.delete(
        "",
        response_model=Removed,
        responses=_BAD_INPUT,
        summary="Remove every entry (needs confirm)",
    )
    @router.delete("/", response_model=Removed, include_in_schema=False)
    async def clear_all(cache: Cache, confirm: Confirm = False) -> Removed:
        if not confirm:
            raise _refuse("clearing the whole cache needs ?confirm=true")
        return Removed(removed=await cache.clear_all())


def _compiled(pattern: str) -> GlobPattern:
    try:
        return GlobPattern.compile(pattern)
    except InvalidKeyError as exc:
        raise _refuse(str(exc)) from None


async def _checked(operation: Any) -> Any:
    """Await a cache call, turning invalid input into a 400 that says what was wrong."""
    try:
        return await operation
    except InvalidKeyError as exc:
        raise _refuse(str(exc)) from None
