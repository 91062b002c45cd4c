"""@cached_route: cache one endpoint's responses, placed under `@app.get(...)`.

The wrapper keeps the endpoint's signature (FastAPI still sees its parameters, dependencies
and response model) and adds two hidden parameters, the Request and the injected Response.
A miss runs the endpoint and renders the response the way FastAPI would; the rendered bytes
are what is stored and what a hit sends back, so a hit returns exactly the body of a miss.

The route follows the middleware's rules (`fastapi.http`): the same URL key, narrowed by
every header and cookie parameter the endpoint declares; `decide_storage` for what may be
stored; the middleware's `Storage` for Vary variants (and their cap).

This module holds the options, the keys and the miss path (running the endpoint, storing its
response); hits, looked up and replayed in the wrapper or in the front that answers them
before FastAPI solves the route's parameters, are in `route_hits.py`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Scope

from ..service import CacheService, FillToken
from ..ttl import DEFAULT_TTL, TTL, DefaultTTL, ttl_seconds
from .dependencies import cache_for_app, registered_cache
from .http import (
    DEFAULT_PRIVATE_REQUEST_HEADERS,
    EXPLICIT_FRESHNESS,
    MAX_DELTA_SECONDS,
    CachePolicy,
    StoredResponse,
    decide_storage,
    header_values,
    lowercase_names,
    parse_cache_control,
    qualified_key,
    request_key,
    storable_headers,
)
from .middleware import DEFAULT_MAX_VARIANTS, Storage, check_max_variants, request_host
from .route_hits import LOOKED_UP, HitShortcut, lookup, replay
from .route_inputs import RouteInputs, input_values, inputs_of, route_inputs
from .route_render import (
    put_in_front_of_route,
    render_response,
    skipped_parameters,
    with_request_and_response,
)
from .route_telling import RouteTelling

__all__ = ["cached_route"]

logger = logging.getLogger("fastapi_cachekit.http")

F = TypeVar("F", bound=Callable[..., Any])
KeyFunc = Callable[[Request], str]
TagsArg = Iterable[str] | Callable[[Request], Iterable[str]] | None
VaryOn = Sequence[str] | Callable[[Request], str] | None
Clock = Callable[[], float]

_NO_INPUTS = RouteInputs()


def cached_route(
    cache: CacheService | None = None,
    *,
    ttl: TTL | DefaultTTL = DEFAULT_TTL,
    namespace: str = "route",
    key_func: KeyFunc | None = None,
    tags: TagsArg = None,
    vary_on: VaryOn = None,
    cache_private_requests: bool = False,
    max_variants: int = DEFAULT_MAX_VARIANTS,
    cache_status: bool | str = True,
    skip_on_hit: Iterable[Callable[..., Any]] = (),
    clock: Clock = time.time,
) -> Callable[[F], F]:
    """Cache a GET endpoint's responses in `cache` (default: the app's service).

    The key is `key_func(request)` verbatim when given, else the route's path template and a
    hash of the request's scheme, host, path and sorted query, narrowed by the values of every
    header and cookie parameter the endpoint (or a dependency) declares and by `vary_on` (a
    list of request headers, or a function of the request, such as the current user's id).
    A response is kept for `ttl`, or less when its Cache-Control says so; one that sets Vary
    is stored per variant (at most `max_variants` per URL). `tags` is a list or a function of
    the request. Responses with Set-Cookie, `no-store`, `no-cache`, `private` or `Vary: *`
    are not stored; requests with Authorization, Proxy-Authorization, Cookie or X-API-Key
    bypass the cache unless the key varies on that header (`vary_on`), `vary_on` is a
    function (which tells users apart), or `cache_private_requests=True`.

    Answers carry a Cache-Status header (RFC 9211) as the middleware's do: `hit`, or
    `fwd=uri-miss` with `stored` when the response was stored (`fwd=bypass` for a request
    that bypasses the cache, when the endpoint returns data rather than a Response). A
    string names the cache in it (default "fastapi-cachekit"); False leaves it out.

    A hit still validates the request and runs the route's dependencies (auth checks), except
    those of the endpoint parameters whose `Depends(call)` names a call in `skip_on_hit` (a
    database session, say): they run on misses only, and a hit never calls them.

    Raises ConfigurationError at decoration for an endpoint input no key can cover (a body
    parameter, a header/cookie model) or an invalid option.
    """
    if not isinstance(ttl, DefaultTTL):
        ttl = ttl_seconds(ttl)  # a bad TTL is refused where @cached_route is written
    options = _Options(
        cache=cache,
        ttl=ttl,
        namespace=namespace,
        key_func=key_func,
        tags=tags if tags is None or callable(tags) else list(tags),
        vary_on=vary_on if vary_on is None or callable(vary_on) else list(vary_on),
        cache_private_requests=cache_private_requests,
        max_variants=check_max_variants(max_variants),
        telling=RouteTelling(cache_status),
        skip_on_hit=tuple(skip_on_hit),
        clock=clock,
    )

    def decorate(endpoint: F) -> F:
        return cast(F, CachedRoute(endpoint, options).wrapper)

    return decorate


@dataclass(frozen=True, slots=True)
class _Options:
    """The decorator's arguments (lists copied)."""

    cache: CacheService | None
    ttl: float | DefaultTTL | None  # parsed at decoration
    namespace: str
    key_func: KeyFunc | None
    tags: TagsArg
    vary_on: VaryOn
    cache_private_requests: bool
    max_variants: int
    telling: RouteTelling
    skip_on_hit: tuple[Callable[..., Any], ...]
    clock: Clock


def _private_fields(vary_on: VaryOn, cache_private_requests: bool) -> frozenset[bytes]:
    """The credential fields that make a request bypass the cache: those the key does not
    vary on. A function `vary_on` tells users apart by itself, so none then."""
    if cache_private_requests or callable(vary_on):
        return frozenset()
    varied = {name.lower().encode("latin-1") for name in vary_on or ()}
    return DEFAULT_PRIVATE_REQUEST_HEADERS - varied


def _ttl_seconds(ttl: float | DefaultTTL | None, cache: CacheService) -> float | None:
    return cache.default_ttl if isinstance(ttl, DefaultTTL) else ttl


class CachedRoute:
    """What @cached_route works out once per endpoint, and the wrapper it installs (its
    hits: `route_hits.py`)."""

    def __init__(self, endpoint: Callable[..., Any], options: _Options) -> None:
        self.endpoint = endpoint
        self.is_async = inspect.iscoroutinefunction(endpoint)
        self.cache = options.cache
        self.ttl = options.ttl
        self.key_func = options.key_func
        self.tags = options.tags
        self.vary_on = options.vary_on
        self.clock = options.clock
        self.telling = options.telling
        self.inputs = self._declared_inputs() if self.key_func is None else _NO_INPUTS
        self.skipped = skipped_parameters(endpoint, options.skip_on_hit)
        self.private_fields = _private_fields(self.vary_on, options.cache_private_requests)
        self.storage = Storage(options.namespace, indexed=False, max_variants=options.max_variants)
        # The route bypasses personal requests itself; the policy only has to let through
        # what it lets through. Its ttl stands for "the route's own ttl" (applied at store).
        self.policy = CachePolicy(
            ttl=float(MAX_DELTA_SECONDS),
            max_body_bytes=None,
            cache_authorized=b"authorization" not in self.private_fields,
            cache_private_requests=True,
        )
        self.wrapper = self._build_wrapper()
        self.hit_shortcut = functools.partial(HitShortcut, cached=self)

    def _declared_inputs(self) -> RouteInputs | None:
        """The endpoint's header and cookie inputs; None when FastAPI cannot analyse it yet
        (a forward reference): they are then read from the route at the first request."""
        try:
            return route_inputs(self.endpoint)
        except NameError:
            return None

    def _build_wrapper(self) -> Callable[..., Any]:
        signature, request_name, response_name = with_request_and_response(self.endpoint)
        self.signature, self.request_name = signature, request_name  # for the hit handler
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

    async def respond(
        self, request: Request, sub_response: Response, kwargs: dict[str, Any]
    ) -> Any:
        scope = request.scope
        if not self.cacheable(scope):
            cache = self.cache or registered_cache(request.app)
            self.telling.bypassed(cache, scope, sub_response)
            return await self.call(kwargs)
        key = self.key(request)
        cache = self.cache or cache_for_app(request.app)
        if not scope.get(LOOKED_UP):  # else the shortcut in front of the route looked
            self._install_shortcut(scope)
            entry = await lookup(self, request, key)
            if entry is not None:
                return replay(self, cache, scope, entry)
        token = await cache.fill_token()  # before computing: see "no stale write-back"
        request_time = self.clock()
        result = await self.call(kwargs)
        response = await render_response(request, result, sub_response)
        why_not: str | None = "unavailable"  # no token: the cache is off or unreachable
        if token is not None:
            why_not = await self._store(cache, request, key, response, request_time, token)
        self.telling.forwarded(cache, scope, response, why_not)
        return response

    async def _store(
        self,
        cache: CacheService,
        request: Request,
        key: str,
        response: Response,
        request_time: float,
        token: FillToken,
    ) -> str | None:
        """Store `response` when the middleware's rules allow, for the route's ttl or the
        response's remaining freshness, whichever is shorter; None, or why it was not."""
        if isinstance(response, StreamingResponse) or not hasattr(response, "body"):
            return "streaming"
        decision = decide_storage(
            "GET",
            request.scope["headers"],
            response.status_code,
            response.raw_headers,
            policy=self.policy,
            request_time=request_time,
            response_time=self.clock(),
        )
        if decision.plan is None or decision.reason == "no-cache":
            return decision.reason
        entry = decision.plan.entry(bytes(response.body))
        if entry is None:
            return "incomplete"  # a body that does not match its Content-Length
        ttl = _ttl_seconds(self.ttl, cache)
        if decision.reason in EXPLICIT_FRESHNESS:
            remaining = entry.lifetime - entry.initial_age
            ttl = remaining if ttl is None else min(ttl, remaining)
            if ttl <= 0:
                return "stale-on-arrival"
        try:
            tags = self._tags(request)
        except Exception:  # the user's function: the response was sent, only caching fails
            logger.exception("@cached_route tags function failed; the response is not stored")
            return "tags-failed"
        await self.storage.put(cache, key, _as_sent(entry, response), ttl, tags=tags, fill=token)
        return None

    def _install_shortcut(self, scope: Scope) -> None:
        """Look later requests up before FastAPI solves the route's parameters."""
        put_in_front_of_route(scope, self.wrapper, self.hit_shortcut)

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
        """`key_func`'s key, or the path template, '#', and the request's qualified URL key."""
        if self.key_func is not None:
            return self.key_func(request)
        scope = request.scope
        route = scope.get("route")
        template = route.path if isinstance(route, APIRoute) else scope["path"]
        url_key = request_key(
            scope.get("scheme", "http"), request_host(scope), scope["path"], scope["query_string"]
        )
        if self.inputs == _NO_INPUTS and self.vary_on is None:
            return f"{template}#{url_key}"  # the common case, on the hit path: nothing to add
        return f"{template}#{qualified_key(url_key, self._inputs_of(request))}"

    def _inputs_of(self, request: Request) -> list[tuple[bytes, Sequence[bytes]]]:
        inputs = self.inputs
        if inputs is None:
            route = request.scope.get("route")
            inputs = inputs_of(route.dependant) if isinstance(route, APIRoute) else _NO_INPUTS
            self.inputs = inputs
        return input_values(request, inputs, self.vary_on)

    def _tags(self, request: Request) -> list[str]:
        if callable(self.tags):
            return list(self.tags(request))
        return list(self.tags or ())


def _as_sent(entry: StoredResponse, response: Response) -> StoredResponse:
    """The entry with the headers the response was sent with (less those never stored), so
    that a hit repeats the miss exactly: no Date or ETag added by the storage rules."""
    headers = lowercase_names(response.raw_headers)
    cc = parse_cache_control(header_values(headers, b"cache-control"))
    return entry._replace(headers=tuple(storable_headers(headers, cc)))
