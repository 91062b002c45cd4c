"""CacheMiddleware: a pure-ASGI shared HTTP cache (RFC 9111) in front of an app.

Per GET/HEAD request: the key (memoised default key, or `key_func`), one read, `decode_entry`,
`decide_lookup`. A fresh hit is `hit_response` and two `send` calls; the app is not entered.
Everything else leaves the hit path for `_dispatch`: serve stale and revalidate in the
background, answer 504 (`only-if-cached`), or send the request to the app through a `Fetch`
(a miss, or a conditional revalidation), collapsing concurrent fetches of one key into one
(single flight). Unsafe methods pass through and, when they succeed, invalidate the stored
responses of their target, Location and Content-Location (§4.4). The rules are the pure
functions of `fastapi/http/`; this package only does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import timedelta

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ...errors import ConfigurationError
from ...service import CacheService
from ..dependencies import cache_for_app, registered_cache
from ..http import (
    DEFAULT_CACHE_NAME,
    SAFE_METHODS,
    Action,
    LookupDecision,
    StoredResponse,
    decide_lookup,
    decide_miss,
    decode_entry,
    hit_response,
    request_key,
)
from .asgi import RequestState, ShutdownReceive, request_host, send_response
from .config import Clock, KeyFunc, TagsFunc, configure
from .fetch import Fetch
from .flights import BackgroundRevalidations, Flights, serve_stored
from .store import DEFAULT_MAX_VARIANTS, Runtime, Storage
from .telling import RouteTemplates, tell
from .unsafe import Invalidator

__all__ = ["CacheMiddleware"]

_SERVE = Action.SERVE
_MEMO_MAX_KEYS = 256
_MEMO_MAX_BYTES = 16384  # bounds the memo to a few MiB even when it holds the only copy
_SHUTDOWN_GRACE = 10.0
"""Seconds the app's shutdown waits for background revalidations before cancelling them."""


class CacheMiddleware:
    """A shared HTTP cache of whole GET responses, serving GET and HEAD requests.

    With no options it stores the responses that state their freshness (`max-age`,
    `s-maxage`, `Expires`, or heuristically from `Last-Modified`), in the app's service.

    - `ttl`: seconds (or a timedelta) of freshness for responses that state none; never
      overrides what a response says.
    - `include` / `exclude`: path globs (`*` matches anything, `/` included) of the requests
      that are cached; others pass through untouched (default: every path).
    - `cache`: the CacheService (default: the app's, found at the first request);
      `namespace`: where responses are stored ("http").
    - `key_func(request) -> str`: the cache key (default: scheme, host, path and sorted
      query, hashed); `tags_func(request) -> tags` for `invalidate_tags`. Forwarding
      headers (X-Forwarded-Host, X-Original-URL, Forwarded, ...) are keyed as if every
      response named them in Vary.
    - `max_body_bytes`: larger bodies pass through unstored (None: no limit).
    - `cache_authorized`, `store_set_cookie`: share responses to requests with
      Authorization, and responses with Set-Cookie (both off).
    - `private_request_headers` (Authorization, Proxy-Authorization, Cookie, X-API-Key):
      in `ttl` mode, requests with these are neither served nor stored unless the response
      is `public`/`s-maxage`, or `cache_private_requests=True`.
    - `respect_request_cache_control`: obey the request's Cache-Control/Pragma (off, so that
      clients cannot force origin hits).
    - `single_flight`: concurrent misses of one key run the app once (on).
    - `cache_status_name`: the cache's name in the Cache-Status header.
    - `max_variants`: Vary variants kept per URL (32); storing one more drops the least
      recently stored, so a client sending a new Accept-Language each time cannot fill the
      cache.
    - `keep_stale`: seconds (600) a stale response stays stored while it can still be used:
      revalidated (it has an ETag or Last-Modified), served to a request's `max-stale` (with
      `respect_request_cache_control`) or on an app failure (`serve_stale_on_error`).
    - `serve_stale_on_error`: seconds of staleness (off) within which a stored response is
      served when the app fails (a 5xx or an exception), as if it had said `stale-if-error`;
      never when it says `no-cache`, `must-revalidate`, `proxy-revalidate` or `s-maxage`.
      Cache-Status then says `detail=stale-on-error` with the (negative) ttl.
    - `server_date`: the server adds a Date to every response, as uvicorn, hypercorn and
      granian do (on): a hit then leaves the stored Date out, so the client gets one Date
      (the server's) and an Age that says how old the response is. Pass False where nothing
      adds a Date (a bare ASGI call), so that hits carry the stored one.
    - `clock`: seconds since the epoch (for tests).

    Raises ConfigurationError for an invalid option.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        ttl: float | timedelta | None = None,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        cache: CacheService | None = None,
        namespace: str = "http",
        key_func: KeyFunc | None = None,
        tags_func: TagsFunc | None = None,
        max_body_bytes: int | None = 1 << 20,
        cache_authorized: bool = False,
        store_set_cookie: bool = False,
        private_request_headers: Iterable[str | bytes] | None = None,
        cache_private_requests: bool = False,
        respect_request_cache_control: bool = False,
        single_flight: bool = True,
        cache_status_name: str = DEFAULT_CACHE_NAME,
        max_variants: int = DEFAULT_MAX_VARIANTS,
        keep_stale: float | timedelta = 600.0,
        serve_stale_on_error: float | timedelta | None = None,
        server_date: bool = True,
        clock: Clock = time.time,
    ) -> None:
        self.app = app
        self.config = config = configure(
            ttl=ttl,
            include=include,
            exclude=exclude,
            cache=cache,
            namespace=namespace,
            key_func=key_func,
            tags_func=tags_func,
            max_body_bytes=max_body_bytes,
            cache_authorized=cache_authorized,
            store_set_cookie=store_set_cookie,
            private_request_headers=private_request_headers,
            cache_private_requests=cache_private_requests,
            respect_request_cache_control=respect_request_cache_control,
            single_flight=single_flight,
            cache_status_name=cache_status_name,
            clock=clock,
            max_variants=max_variants,
            keep_stale=keep_stale,
            serve_stale_on_error=serve_stale_on_error,
            server_date=server_date,
        )
        policy = config.policy
        # Requests that must not share a flight: their response may be theirs alone.
        self._solo_fields = policy.personal_fields | (
            frozenset() if policy.cache_authorized else frozenset({b"authorization"})
        )
        self._storage = Storage(
            config.namespace, indexed=key_func is not None, max_variants=config.max_variants
        )
        self._runtime: Runtime | None = None
        self._templates = RouteTemplates()
        self._flights = Flights()
        self._revalidations = BackgroundRevalidations()
        # Hot keys' decoded entries, reused while the stored bytes are equal (the memory
        # backend returns the very same object, so that check is an identity test). Decoding
        # is a third of a hit's cost; bytes are immutable, so a reuse cannot go stale.
        self._decoded: dict[str, tuple[bytes, StoredResponse]] = {}

    def _decode(self, key: str, raw: bytes) -> StoredResponse | None:
        """Decode stored bytes, remembering small entries for the next hit of `key`."""
        entry = decode_entry(raw)
        if entry is not None and len(raw) <= _MEMO_MAX_BYTES:
            if len(self._decoded) >= _MEMO_MAX_KEYS:
                self._decoded.clear()  # cheaper than LRU upkeep; hot keys come straight back
            self._decoded[key] = (raw, entry)
        return entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The hit path is this one function on purpose: every call it saves is measurable
        # against a bare ASGI app. Everything past a fresh hit goes to `_dispatch`.
        if scope["type"] != "http":
            await self._not_http(scope, receive, send)
            return
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            await self._other_method(scope, receive, send)
            return
        config = self.config
        if config.paths is not None and not config.paths.allows(scope["path"]):
            await self.app(scope, receive, send)
            return
        rt = self._runtime_for(scope)
        request = None
        if config.key_func is None:
            key = request_key(
                scope.get("scheme", "http"),
                request_host(scope),
                scope["path"],
                scope.get("query_string", b""),
            )
        else:
            request = Request(scope)
            key = config.key_func(request)
        raw = await rt.cache.get_raw(key, config.namespace)
        if raw is None:
            entry = None
        else:
            memo = self._decoded.get(key)
            entry = memo[1] if memo is not None and memo[0] == raw else self._decode(key, raw)
        storage_key = key
        if entry is None and raw is not None:
            entry, storage_key = await rt.storage.variant(rt.cache, key, raw, scope["headers"])
        if entry is None:
            decision = decide_miss(scope["headers"], policy=config.policy)
        else:
            decision = decide_lookup(
                entry, scope["headers"], policy=config.policy, now=config.clock()
            )
            if decision.action is _SERVE:
                status, headers, body = hit_response(
                    entry, decision, config.status.hit(decision.ttl), date=config.send_date
                )
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body if method == "GET" else b""})
                if rt.cache.emit is not None:
                    tell(rt, scope, "hit", key=storage_key)
                return
        state = RequestState(scope, key, storage_key, request)
        await self._dispatch(rt, state, entry, decision, receive, send)

    def _runtime_for(self, scope: Scope) -> Runtime:
        """The runtime of this request. Without `cache=`, the service is the one the app holds
        now, so that `setup_cache(app, other)` after the first request (a test's override)
        takes effect at the next request."""
        rt = self._runtime
        if rt is None or (
            self.config.cache is None and registered_cache(scope.get("app")) is not rt.cache
        ):
            rt = self._make_runtime(scope)
        return rt

    def _make_runtime(self, scope: Scope) -> Runtime:
        """The runtime for the given service, or the app's (registered if it has none)."""
        cache = self.config.cache
        if cache is None:
            app = scope.get("app")
            if app is None:
                raise ConfigurationError(
                    "CacheMiddleware has no cache: pass cache=CacheService(...), or add it "
                    "to a Starlette/FastAPI app to use the app's service"
                )
            cache = cache_for_app(app)
        self._runtime = Runtime(self.app, self.config, self._storage, cache, self._templates)
        return self._runtime

    # --- everything but a fresh hit ------------------------------------------------------

    async def _dispatch(
        self,
        rt: Runtime,
        state: RequestState,
        entry: StoredResponse | None,
        decision: LookupDecision,
        receive: Receive,
        send: Send,
    ) -> None:
        action = decision.action
        status = self.config.status
        if action is Action.SERVE_STALE and entry is not None:
            await serve_stored(
                state, entry, decision, status.hit(decision.ttl), send, date=self.config.send_date
            )
            tell(rt, state.scope, "stale_served", decision.reason, state.storage_key)
            self._revalidations.start(rt, state, entry)
            return
        if action is Action.GATEWAY_TIMEOUT:
            headers = [
                (b"content-length", b"0"),
                (b"cache-status", status.detail("only-if-cached")),
            ]
            await send_response(send, 504, headers, b"")
            tell(rt, state.scope, "miss", "only-if-cached", state.storage_key)
            return
        fwd = decision.fwd or "uri-miss"
        if entry is None and state.storage_key != state.key:
            fwd = "vary-miss"  # the URL has stored variants, not this request's
        # A HEAD is never revalidated nor stored (the stored GET answers HEADs): it forwards
        # as it is, unless a GET for the same key is in flight, whose response it can share.
        revalidate = entry if action is Action.REVALIDATE and state.method == "GET" else None
        if not self.config.single_flight or self._solo(state):
            await Fetch(rt, state, send, fwd=fwd, entry=revalidate).run(receive)
            return
        flight = self._flights.get(state.storage_key)
        if flight is not None:
            await self._flights.follow(rt, state, flight, fwd, receive, send)
        elif state.method == "GET":
            await self._flights.lead(rt, state, revalidate, fwd, receive, send)
        else:
            await Fetch(rt, state, send, fwd=fwd).run(receive)

    def _solo(self, state: RequestState) -> bool:
        """True when the request carries a field that may make its response its own (it
        then neither leads nor joins a flight)."""
        solo = self._solo_fields
        return any(name in solo for name, _ in state.headers)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for running background revalidations; cancel those left after `timeout`.

        The app's lifespan shutdown calls this, so no revalidation outlives the app.
        """
        await self._revalidations.drain(timeout)

    async def _shutdown(self) -> None:
        await self.drain(timeout=_SHUTDOWN_GRACE)

    # --- other scopes and methods --------------------------------------------------------

    async def _not_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            receive = ShutdownReceive(receive, self._shutdown)
        await self.app(scope, receive, send)

    async def _other_method(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        rt = self._runtime_for(scope)
        await self.app(scope, receive, Invalidator(rt, scope, send).send)
