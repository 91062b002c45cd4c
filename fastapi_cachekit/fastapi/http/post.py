"""Reusing a POST response for later GETs of its target (RFC 9110 §9.3.3, RFC 9111 §3).

A POST response is reusable only when it says so twice: explicit freshness (`max-age`,
`s-maxage` or `Expires`; never the cache's `ttl` nor heuristics) and a `Content-Location`
equal to the POST's own target URI, on the same origin. Everything else about storing it is
the GET rules (`decide_storage`): Set-Cookie, private, Authorization and personal request
fields refuse it as they would a GET response. Only 200 responses are kept: a 201 or 204
replayed to a GET would say something the GET never did.
"""

from __future__ import annotations

from .headers import Headers, header_values, lowercase_names
from .keys import TargetURL, request_key, same_origin_reference
from .policy import CachePolicy
from .store import StoreDecision, decide_storage

__all__ = ["EXPLICIT_FRESHNESS", "decide_post_storage", "post_content_target"]

EXPLICIT_FRESHNESS = frozenset({"s-maxage", "max-age", "expires"})
"""The `decide_storage` reasons that name freshness the response stated itself."""


def post_content_target(
    scheme: str, host: str, path: str, query: bytes | str, response_headers: Headers
) -> TargetURL | None:
    """The POST's target URL when the response's one Content-Location names exactly it (same
    origin, path and query, after resolving a relative reference); else None."""
    values = header_values(lowercase_names(response_headers), b"content-location")
    if len(values) != 1:
        return None
    named = same_origin_reference(scheme, host, path, query, values[0])
    if named is None or named.key != request_key(scheme, host, path, query):
        return None
    return named


def decide_post_storage(
    request_headers: Headers,
    status: int,
    response_headers: Headers,
    *,
    policy: CachePolicy,
    request_time: float,
    response_time: float,
) -> StoreDecision:
    """Whether a POST response (whose Content-Location names its target) may answer later GETs
    of that target: the GET storage rules, plus explicit freshness and status 200."""
    if status != 200:
        return StoreDecision("status")
    decision = decide_storage(
        "GET",
        request_headers,
        status,
        response_headers,
        policy=policy,
        request_time=request_time,
        response_time=response_time,
    )
    if decision.store and decision.reason not in EXPLICIT_FRESHNESS:
        return StoreDecision("no-explicit-freshness")
    return decision
