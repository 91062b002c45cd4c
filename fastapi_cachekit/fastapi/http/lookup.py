"""Serving from the cache: what to do with a stored response for a request, and the hit response.

RFC 9111 §4 (reuse), §4.1 (Vary), §4.2.4 (serving stale), §4.3.1 (validation requests),
§3.5 (Authorization), §5.2.1 (request directives); RFC 5861 (stale-while-revalidate,
stale-if-error); and the safety default of `ttl` mode: a request carrying a personal header
(`Cookie`, `X-API-Key`, ...) is served only a response marked `public` or with `s-maxage`.

The hit path is `decide_lookup` then `hit_response`: one scan of the request's header list
for the few fields that matter, a Vary comparison, and arithmetic on stored numbers.
"""

from __future__ import annotations

import math
from enum import Enum
from typing import NamedTuple

from .cache_control import CacheControl, parse_cache_control
from .conditional import not_modified, not_modified_headers
from .entry import StoredResponse
from .freshness import whole_seconds
from .headers import Header, HeaderList, Headers, vary_matches
from .policy import CachePolicy

__all__ = [
    "CONDITIONAL_FIELDS",
    "Action",
    "LookupDecision",
    "decide_lookup",
    "decide_miss",
    "hit_response",
    "revalidation_headers",
    "stale_if_error_allows",
    "stale_on_error",
    "without_conditionals",
]

CONDITIONAL_FIELDS = frozenset({b"if-none-match", b"if-modified-since"})
"""The request conditionals a cache evaluates itself (RFC 9111 §4.3.2)."""


class Action(Enum):
    """What the middleware does after a lookup."""

    SERVE = "serve"
    """Send the stored response (or a 304 when `not_modified`); the app is not called."""
    SERVE_STALE = "serve-stale"
    """Send the stale stored response now and revalidate it in the background (RFC 5861)."""
    REVALIDATE = "revalidate"
    """Call the app with `revalidation_headers(...)`, then `decide_revalidation`."""
    FORWARD = "forward"
    """The stored response cannot be used for this request: call the app as on a miss."""
    GATEWAY_TIMEOUT = "gateway-timeout"
    """`only-if-cached` and nothing usable is stored: answer 504 without calling the app."""


class LookupDecision(NamedTuple):
    """The outcome of a lookup: the action, why, and the numbers for Age and Cache-Status.

    `age` is the Age header value (whole seconds); `ttl` the remaining freshness (negative
    when stale); `fwd` the RFC 9211 `fwd` reason when the request goes to the app.
    """

    action: Action
    reason: str
    age: int = 0
    ttl: int = 0
    not_modified: bool = False
    fwd: str | None = None


def _found(request_headers: Headers, fields: frozenset[bytes]) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    for name, value in request_headers:
        if name in fields:
            found.setdefault(name, []).append(value)
    return found


def _request_directives(found: dict[bytes, list[bytes]]) -> CacheControl | None:
    """Request directives (Pragma only without Cache-Control, §5.4), or None if there are none."""
    if b"cache-control" in found:
        return parse_cache_control(found[b"cache-control"])
    pragma = b",".join(found.get(b"pragma", ()))
    if b"no-cache" in (token.strip().lower() for token in pragma.split(b",")):
        return CacheControl(no_cache=True)
    return None


def decide_miss(request_headers: Headers, *, policy: CachePolicy) -> LookupDecision:
    """Nothing is stored for the request: forward it, or 504 for `only-if-cached` (§5.2.1.7)."""
    if policy.respect_request_cache_control:
        cc = _request_directives(_found(request_headers, policy.lookup_fields))
        if cc is not None and cc.only_if_cached:
            return LookupDecision(Action.GATEWAY_TIMEOUT, "only-if-cached")
    return LookupDecision(Action.FORWARD, "miss", fwd="uri-miss")


def decide_lookup(
    entry: StoredResponse, request_headers: Headers, *, policy: CachePolicy, now: float
) -> LookupDecision:
    """Decide how a GET/HEAD request is answered given a stored response, at time `now`."""
    found = _found(request_headers, policy.lookup_fields)
    age = entry.age(now)
    if (
        not found
        and not entry.no_cache
        and entry.lifetime > age
        and (not entry.vary or vary_matches(entry.vary, request_headers))
    ):
        # The common hit: a fresh response and no request field that changes the answer.
        return LookupDecision(Action.SERVE, "fresh", int(age), math.floor(entry.lifetime - age))
    directives = _request_directives(found) if policy.respect_request_cache_control else None
    decision = _usable(entry, request_headers, found, policy) or _by_freshness(
        entry, age, entry.lifetime - age, directives
    )
    if decision.action in (Action.SERVE, Action.SERVE_STALE):
        inm, ims = found.get(b"if-none-match", ()), found.get(b"if-modified-since", ())
        if (inm or ims) and not_modified(entry, inm, ims):
            return decision._replace(not_modified=True)
    elif directives is not None and directives.only_if_cached:
        return LookupDecision(Action.GATEWAY_TIMEOUT, "only-if-cached", decision.age, decision.ttl)
    return decision


def _usable(
    entry: StoredResponse,
    request_headers: Headers,
    found: dict[bytes, list[bytes]],
    policy: CachePolicy,
) -> LookupDecision | None:
    """A FORWARD decision when the stored response may not answer this request at all."""
    if entry.vary and not vary_matches(entry.vary, request_headers):
        return LookupDecision(Action.FORWARD, "vary-miss", fwd="vary-miss")
    if not found:
        return None
    if b"authorization" in found and not (policy.cache_authorized or entry.authorized_ok):
        return LookupDecision(Action.FORWARD, "authorization", fwd="bypass")
    if not entry.shareable and not policy.personal_fields.isdisjoint(found):
        return LookupDecision(Action.FORWARD, "private-request-header", fwd="bypass")
    return None


def _by_freshness(
    entry: StoredResponse, age: float, remaining: float, cc: CacheControl | None
) -> LookupDecision:
    """Serve, serve stale or revalidate, from freshness and the request's directives."""
    age_s, ttl_s = whole_seconds(age), math.floor(remaining)
    if entry.no_cache:
        return LookupDecision(Action.REVALIDATE, "no-cache", age_s, ttl_s, fwd="stale")
    if remaining > 0:
        if cc is not None and (forced := _forced_by_request(cc, age, remaining)):
            return LookupDecision(Action.REVALIDATE, forced, age_s, ttl_s, fwd="request")
        return LookupDecision(Action.SERVE, "fresh", age_s, ttl_s)
    staleness = -remaining
    if cc is not None and _max_stale_allows(entry, cc, age, staleness):
        return LookupDecision(Action.SERVE, "max-stale", age_s, ttl_s)
    if (cc is None or not _wants_fresh(cc)) and _within_stale_while_revalidate(entry, staleness):
        return LookupDecision(Action.SERVE_STALE, "stale-while-revalidate", age_s, ttl_s)
    return LookupDecision(Action.REVALIDATE, "stale", age_s, ttl_s, fwd="stale")


def _forced_by_request(cc: CacheControl, age: float, remaining: float) -> str | None:
    """Why the request's own directives rule out a fresh stored response, if they do (§5.2.1)."""
    if cc.no_cache:
        return "request-no-cache"
    if cc.max_age is not None and age > cc.max_age:
        return "request-max-age"
    if cc.min_fresh is not None and remaining < cc.min_fresh:
        return "request-min-fresh"
    return None


def _wants_fresh(cc: CacheControl) -> bool:
    """The request asks for a validated or young enough response: no stale-while-revalidate."""
    return cc.no_cache or cc.max_age is not None or cc.min_fresh is not None


def _max_stale_allows(
    entry: StoredResponse, cc: CacheControl, age: float, staleness: float
) -> bool:
    """A request's `max-stale` admits this staleness, and nothing forbids it (§4.2.4)."""
    if cc.max_stale is None or cc.no_cache or entry.forbids_max_stale:
        return False
    if cc.max_age is not None and age > cc.max_age:
        return False
    return staleness <= cc.max_stale


def _within_stale_while_revalidate(entry: StoredResponse, staleness: float) -> bool:
    return (
        entry.stale_while_revalidate > 0
        and not entry.forbids_stale
        and staleness <= entry.stale_while_revalidate
    )


def stale_if_error_allows(
    entry: StoredResponse, now: float, request_cc: CacheControl | None = None
) -> bool:
    """True when the stored response may replace an app failure (5xx or an exception) at `now`:
    within the response's (or, when request directives are respected, the request's)
    `stale-if-error` window and not forbidden by no-cache/must-revalidate/proxy-revalidate."""
    if entry.forbids_stale:
        return False
    window = entry.stale_if_error
    if request_cc is not None and request_cc.stale_if_error is not None:
        window = max(window, float(request_cc.stale_if_error))
    return window > 0 and -entry.ttl(now) <= window


def stale_on_error(
    entry: StoredResponse,
    now: float,
    request_cc: CacheControl | None = None,
    *,
    window: float = 0.0,
) -> str | None:
    """Why the stored response may replace an app failure at `now`, or None when it may not:
    `stale-if-error` (the response's or the request's window, RFC 5861 §4), else
    `stale-on-error` (the cache's own `window`, RFC 9111 §4.2.4: a shared cache may serve
    stale unless `no-cache`, `must-revalidate`, `proxy-revalidate` or `s-maxage` forbid it)."""
    if stale_if_error_allows(entry, now, request_cc):
        return "stale-if-error"
    if window > 0 and not entry.forbids_max_stale and -entry.ttl(now) <= window:
        return "stale-on-error"
    return None


def without_conditionals(request_headers: Headers) -> HeaderList:
    """The request's headers minus If-None-Match/If-Modified-Since (to fetch a full response)."""
    return [(name, value) for name, value in request_headers if name not in CONDITIONAL_FIELDS]


def revalidation_headers(request_headers: Headers, entry: StoredResponse) -> HeaderList:
    """The headers of the conditional request that validates `entry` (RFC 9111 §4.3.1): the
    client's own conditionals are replaced by the stored ETag (unless the cache made it up)
    and Last-Modified."""
    headers = without_conditionals(request_headers)
    if entry.origin_etag:
        headers.append((b"if-none-match", entry.origin_etag))
    if entry.last_modified:
        headers.append((b"if-modified-since", entry.last_modified))
    return headers


def hit_response(
    entry: StoredResponse, decision: LookupDecision, cache_status: bytes, *, date: bool = True
) -> tuple[int, HeaderList, bytes]:
    """(status, headers, body) answering the request from `entry`: the stored response, or a
    304 when the decision says `not_modified`; with Age and Cache-Status appended. For a HEAD
    request send the headers and drop the body (Content-Length stays that of the GET).

    `date=False` leaves the stored Date out, for a server that adds its own to every response
    (a second Date would contradict it); Age still says how old the response is (§5.1)."""
    extra = [(b"age", str(decision.age).encode("ascii")), (b"cache-status", cache_status)]
    headers = entry.headers if date else _without_date(entry.headers)
    if decision.not_modified:
        return 304, not_modified_headers(entry._replace(headers=headers)) + extra, b""
    return entry.status, [*headers, *extra], entry.body


def _without_date(headers: tuple[Header, ...]) -> tuple[Header, ...]:
    if headers and headers[0][0] == b"date":  # where storage puts it: one slice
        return headers[1:]
    return tuple(pair for pair in headers if pair[0] != b"date")
