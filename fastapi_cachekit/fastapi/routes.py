"""@cached_route: cache one endpoint's responses, placed under `@app.get(...)`.

The wrapper keeps the endpoint's signature (FastAPI still sees its parameters, dependencies
and response model) and adds two hidden parameters, the Request and the injected Response.
A miss runs the endpoint and renders the response the way FastAPI would; the rendered bytes
are what is stored and what a hit sends back, so a hit returns exactly the body of a miss.
"""

from __future__ import annotations

import functools
import inspect
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, serialize_response
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..keys import hash_text
from ..service import CacheService
from ..ttl import DEFAULT_TTL, TTL, DefaultTTL, ttl_seconds
from .dependencies import cache_for_app
from .http import (
    DEFAULT_CACHEABLE_STATUSES,
    DEFAULT_PRIVATE_REQUEST_HEADERS,
    StoredResponse,
    canonical_query,
    decode_entry,
    encode_entry,
    header_values,
    parse_cache_control,
    strip_hop_by_hop,
)

__all__ = ["cached_route"]

F = TypeVar("F", bound=Callable[..., Any])
KeyFunc = Callable[[Request], str]
TagsArg = Iterable[str] | Callable[[Request], Iterable[str]] | None
VaryOn = Sequence[str] | Callable[[Request], str] | None

_LOOKED_UP = "fastapi_cachekit.route_looked_up"
"""Scope key: the shortcut already looked this request up (and counted the miss)."""
_REQUEST = "_cachekit_request"
_RESPONSE = "_cachekit_response"
_SERIALIZE_HAS_DUMP_JSON = "dump_json" in inspect.signature(serialize_response).parameters


def cached_route(
    cache: CacheService | None = None,
    *,
    ttl: TTL | DefaultTTL = DEFAULT_TTL,
    namespace: str = "route",
    key_func: KeyFunc | None = None,
    tags: TagsArg = None,
    vary_on: VaryOn = None,
    cache_private_requests: bool = False,
) -> Callable[[F], F]:
    """Cache a GET endpoint's responses in `cache` (default: the app's service).

    The key is `key_func(request)` verbatim when given, else the route's path template with
    its path and query parameter values, plus the `vary_on` request headers (or the value
    of a function of the request, such as the current user's id). `tags` is a list or a
    function of the request. Responses with Set-Cookie, `no-store` or `private` are not
    stored; requests with Authorization, Proxy-Authorization, Cookie or X-API-Key bypass
    the cache unless the key varies on that header (`vary_on`), `vary_on` is a function
    (which tells users apart), or `cache_private_requests=True`.
    """
    if not isinstance(ttl, DefaultTTL):
        ttl = ttl_seconds(ttl)  # a bad TTL is refused where @cached_route is written

    def decorate(endpoint: F) -> F:
        return cast(
            F,
            _CachedRoute(
                endpoint, cache, ttl, namespace, key_func, tags, vary_on, cache_private_requests
            ).wrapper,
        )

    return decorate


def _private_fields(vary_on: VaryOn, cache_private_requests: bool) -> frozenset[bytes]:
    """The credential fields that make a request bypass the cache: those the key does not
    vary on. A function `vary_on` tells users apart by itself, so none then."""
    if cache_private_requests or callable(vary_on):
        return frozenset()
    varied = {name.lower().encode("latin-1") for name in vary_on or ()}
    return DEFAULT_PRIVATE_REQUEST_HEADERS - varied


class _CachedRoute:
    """What @cached_route works out once per endpoint, and the wrapper it installs."""

    def __init__(
        self,
        endpoint: Callable[..., Any],
        cache: CacheService | None,
        ttl: TTL | DefaultTTL,
        namespace: str,
        key_func: KeyFunc | None,
        tags: TagsArg,
        vary_on: VaryOn,
        cache_private_requests: bool,
    ) -> None:
        self.endpoint = endpoint
        self.is_async = inspect.iscoroutinefunction(endpoint)
        self.cache = cache
        self.ttl = ttl
        self.namespace = namespace
        self.key_func = key_func
        self.tags = tags if tags is None or callable(tags) else list(tags)
        self.vary_on = vary_on if vary_on is None or callable(vary_on) else list(vary_on)
        self.private_fields = _private_fields(self.vary_on, cache_private_requests)
        self.wrapper = self._build_wrapper()

    def _build_wrapper(self) -> Callable[..., Any]:
        signature, request_name, response_name = _with_request_and_response(self.endpoint)
        hidden = {request_name, response_name} - set(inspect.signature(self.endpoint).parameters)

        @functools.wraps(self.endpoint)
        async def wrapper(**kwargs: Any) -> Any:
            request: Request = kwargs[request_name]
            sub_response: Response = kwargs[response_name]
            for name in hidden:
                del kwargs[name]
            return await self.respond(request, sub_response, kwargs)

        wrapper.__dict__["__signature__"] = signature  # what inspect.signature reports
        return wrapper

    def cacheable(self, scope: Scope) -> bool:
        """Whether this request may be answered from (and stored in) the cache."""
        return scope["method"] in ("GET", "HEAD") and not self._bypass(scope)

    async def lookup(self, request: Request) -> StoredResponse | None:
        cache = self.cache or cache_for_app(request.app)
        stored = await cache.get_raw(self.key(request), namespace=self.namespace)
        return decode_entry(stored) if stored is not None else None

    async def respond(
        self, request: Request, sub_response: Response, kwargs: dict[str, Any]
    ) -> Any:
        scope = request.scope
        if not self.cacheable(scope):
            return await self.call(kwargs)
        if not scope.get(_LOOKED_UP):  # else the shortcut in front of the route looked
            self._install_shortcut(scope)
            entry = await self.lookup(request)
            if entry is not None:
                return _Replay(entry)
        cache = self.cache or cache_for_app(request.app)
        token = await cache.fill_token()  # before computing: see "no stale write-back"
        result = await self.call(kwargs)
        response = await _render(request, result, sub_response)
        if token is not None and _storable(response):
            await cache.set_raw(
                self.key(request),
                encode_entry(_entry(response)),
                ttl=self.ttl,
                namespace=self.namespace,
                tags=self._tags(request),
                fill=token,
            )
        return response

    def _install_shortcut(self, scope: Scope) -> None:
        """Answer later hits before FastAPI solves the route's parameters, when nothing of
        the user's (a dependency, such as an auth check) must run for every request."""
        route = scope.get("route")
        if (
            isinstance(route, APIRoute)
            and route.endpoint is self.wrapper
            and not route.dependant.dependencies
            and not isinstance(route.app, _HitShortcut)
        ):
            route.app = _HitShortcut(route.app, self)

    async def call(self, kwargs: dict[str, Any]) -> Any:
        if self.is_async:
            return await self.endpoint(**kwargs)
        return await run_in_threadpool(self.endpoint, **kwargs)

    def _bypass(self, scope: Scope) -> bool:
        private = self.private_fields
        if not private:
            return False
        # ASGI header names are lowercase bytes: no Headers object needed.
        return any(name in private for name, _ in scope["headers"])

    def key(self, request: Request) -> str:
        if self.key_func is not None:
            return self.key_func(request)
        scope = request.scope
        route = scope.get("route")
        template = route.path if isinstance(route, APIRoute) else scope["path"]
        params = tuple(sorted(scope.get("path_params", {}).items()))
        variant = None if self.vary_on is None else self._variant(request)
        return _route_key(template, params, scope["query_string"], variant)

    def _variant(self, request: Request) -> str:
        if callable(self.vary_on):
            return str(self.vary_on(request))
        return chr(0).join(
            f"{name.lower()}={request.headers.get(name, '')}" for name in self.vary_on or ()
        )

    def _tags(self, request: Request) -> list[str] | None:
        if callable(self.tags):
            return list(self.tags(request))
        return self.tags


@functools.lru_cache(maxsize=4096)
def _route_key(
    template: str, params: tuple[tuple[str, Any], ...], query: bytes, variant: str | None
) -> str:
    """The default key: template, path and sorted query values, hashed (memoised, since a
    hot route sees the same few URLs again and again)."""
    parts = [template, "&".join(f"{k}={v}" for k, v in params), canonical_query(query)]
    if variant is not None:
        parts.append(variant)
    return f"{template}#{hash_text(chr(0).join(parts))}"


def _with_request_and_response(endpoint: Callable[..., Any]) -> tuple[inspect.Signature, str, str]:
    """The endpoint's signature (annotations resolved) with a Request and a Response parameter.

    FastAPI injects one Request and one Response per endpoint, so the endpoint's own are
    reused when it declares them; otherwise hidden keyword-only ones are added.
    """
    signature = inspect.signature(endpoint)
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
    except NameError:  # a name FastAPI cannot see either; let it report that as usual
        hints = {}
    params = [
        param.replace(annotation=hints.get(name, param.annotation))
        for name, param in signature.parameters.items()
    ]
    request_name = _parameter_of_type(params, Request) or _REQUEST
    response_name = _parameter_of_type(params, Response) or _RESPONSE
    hidden = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
        for name, annotation in ((request_name, Request), (response_name, Response))
        if name not in signature.parameters
    ]
    # Keyword-only parameters must come before a **kwargs.
    tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    head = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    returns = hints.get("return", inspect.Signature.empty)
    new = signature.replace(parameters=head + hidden + tail, return_annotation=returns)
    return new, request_name, response_name


def _parameter_of_type(params: list[inspect.Parameter], kind: type) -> str | None:
    for param in params:
        if inspect.isclass(param.annotation) and issubclass(param.annotation, kind):
            return param.name
    return None


async def _render(request: Request, result: Any, sub_response: Response) -> Response:
    """The response FastAPI would send for `result` (serialized by the route's model)."""
    if isinstance(result, Response):
        return result
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        response: Response = JSONResponse(result)
        response.raw_headers.extend(sub_response.raw_headers)
        return response
    response_class = route.response_class
    default_class = isinstance(response_class, DefaultPlaceholder)
    dump_json = _SERIALIZE_HAS_DUMP_JSON and route.response_field is not None and default_class
    options: dict[str, Any] = {"dump_json": True} if dump_json else {}
    content = await serialize_response(
        field=route.response_field,
        response_content=result,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        **options,
    )
    status = sub_response.status_code or route.status_code
    args: dict[str, Any] = {} if status is None else {"status_code": status}
    if dump_json:
        response = Response(content=content, media_type="application/json", **args)
    else:
        cls = (
            response_class.value
            if isinstance(response_class, DefaultPlaceholder)
            else response_class
        )
        response = cls(content, **args)
    response.raw_headers.extend(sub_response.raw_headers)
    return response


def _storable(response: Response) -> bool:
    """The middleware's safety rules: no Set-Cookie, no `no-store`/`private`, no streams."""
    if isinstance(response, StreamingResponse) or not hasattr(response, "body"):
        return False
    if response.status_code not in DEFAULT_CACHEABLE_STATUSES:
        return False
    headers = response.raw_headers
    if header_values(headers, b"set-cookie"):
        return False
    directives = parse_cache_control(header_values(headers, b"cache-control"))
    return not (directives.no_store or directives.private)


def _entry(response: Response) -> StoredResponse:
    now = time.time()
    return StoredResponse(
        response.status_code,
        tuple(strip_hop_by_hop(response.raw_headers)),
        bytes(response.body),
        now,
        now,
        now,
        0.0,
        0.0,
        0.0,
        0.0,
        0,
        b"",
        b"",
        (),
    )


class _Replay(Response):
    """A stored response sent as it was: status, headers and body as stored."""

    def __init__(self, entry: StoredResponse) -> None:
        # Response.__init__ would render and compute headers again; all is stored already.
        self.status_code = entry.status
        self.body = entry.body
        self.raw_headers = list(entry.headers)
        self.background = None


class _HitShortcut:
    """The ASGI app of a cached route without dependencies: a hit is sent straight from the
    cache; anything else goes on to FastAPI's handler (marked as already looked up)."""

    def __init__(self, app: ASGIApp, cached: _CachedRoute) -> None:
        self.app = app
        self.cached = cached

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.cached.cacheable(scope):
            entry = await self.cached.lookup(Request(scope))
            if entry is not None:
                await _Replay(entry)(scope, receive, send)
                return
            scope[_LOOKED_UP] = True
        await self.app(scope, receive, send)
