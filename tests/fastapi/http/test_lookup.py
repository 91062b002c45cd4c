"""Serving: the lookup decision (RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861): `http/lookup.py`."""

from __future__ import annotations

import pytest

from fastapi_cachekit.fastapi.http import (
    Action,
    CachePolicy,
    CacheStatus,
    LookupDecision,
    decide_miss,
    format_http_date,
    hit_response,
    revalidation_headers,
    stale_if_error_allows,
    without_conditionals,
)

from .support import (
    AUTH,
    DEFAULT,
    EXPLICIT,
    RESPECT,
    T0,
    T0_HTTP,
    TTL,
    cc,
    hdrs,
    lookup,
    stored,
    validated_entry,
)


def test_fresh_hit_serves_with_age_and_cache_status() -> None:
    entry = stored(EXPLICIT, b"hello", at=T0)
    decision = lookup(entry, hdrs(host="x"), now=T0 + 12.7)
    assert decision == LookupDecision(Action.SERVE, "fresh", 12, 47)
    status, headers, body = hit_response(entry, decision, CacheStatus().hit(decision.ttl))
    assert (status, body) == (200, b"hello")
    assert headers[-2:] == [(b"age", b"12"), (b"cache-status", b"fastapi-cachekit; hit; ttl=47")]
    assert list(entry.headers) == headers[:-2]


def test_freshness_boundary_is_strict() -> None:
    entry = stored(EXPLICIT, at=T0)
    assert lookup(entry, now=T0 + 59.9).action is Action.SERVE
    assert lookup(entry, now=T0 + 60).action is Action.REVALIDATE


def test_stale_response_is_revalidated_with_conditional_headers() -> None:
    entry = validated_entry()
    decision = lookup(entry, now=T0 + 61)
    assert (decision.action, decision.reason, decision.fwd) == (
        Action.REVALIDATE,
        "stale",
        "stale",
    )
    assert decision.ttl == -1
    request = hdrs(host="x", if_none_match='"client"', if_modified_since=T0_HTTP.decode())
    sent = revalidation_headers(request, entry)
    assert sent == [
        (b"host", b"x"),
        (b"if-none-match", b'"v1"'),
        (b"if-modified-since", format_http_date(T0 - 100)),
    ]


def test_revalidation_never_sends_a_generated_etag() -> None:
    entry = stored(EXPLICIT, b"x")
    assert revalidation_headers(hdrs(host="x"), entry) == hdrs(host="x")


def test_without_conditionals() -> None:
    request = hdrs(host="x", if_none_match='"a"', if_modified_since="y", if_match='"b"')
    assert without_conditionals(request) == hdrs(host="x", if_match='"b"')


def test_max_age_zero_response_is_revalidated() -> None:
    entry = stored(hdrs(cache_control="max-age=0", etag='"a"'))
    assert lookup(entry).action is Action.REVALIDATE


@pytest.mark.parametrize("directive", ["must-revalidate", "proxy-revalidate", "no-cache"])
def test_stale_never_served_when_forbidden(directive: str) -> None:
    entry = stored(
        hdrs(
            cache_control=f"max-age=10, {directive}, "
            "stale-while-revalidate=100, stale-if-error=100",
            etag='"a"',
        )
    )
    assert lookup(entry, now=T0 + 20).action is Action.REVALIDATE
    assert not stale_if_error_allows(entry, T0 + 20)
    asks_stale = hdrs(cache_control="max-stale=1000")
    assert lookup(entry, asks_stale, now=T0 + 20, policy=RESPECT).action is Action.REVALIDATE


def test_stale_while_revalidate_serves_stale_within_the_window() -> None:
    entry = stored(hdrs(cache_control="max-age=10, stale-while-revalidate=30"))
    inside = lookup(entry, now=T0 + 40)
    assert (inside.action, inside.ttl) == (Action.SERVE_STALE, -30)
    assert lookup(entry, now=T0 + 40.5).action is Action.REVALIDATE


def test_stale_while_revalidate_with_s_maxage_is_honoured() -> None:
    entry = stored(hdrs(cache_control="s-maxage=10, stale-while-revalidate=30"))
    assert lookup(entry, now=T0 + 20).action is Action.SERVE_STALE


def test_stale_if_error_window() -> None:
    entry = stored(hdrs(cache_control="max-age=10, stale-if-error=30"))
    assert stale_if_error_allows(entry, T0 + 5)
    assert stale_if_error_allows(entry, T0 + 40)
    assert not stale_if_error_allows(entry, T0 + 41)
    no_window = stored(EXPLICIT)
    assert not stale_if_error_allows(no_window, T0 + 61)
    request_window = cc("stale-if-error=100")
    assert stale_if_error_allows(no_window, T0 + 100, request_window)


def test_request_directives_are_ignored_by_default() -> None:
    entry = stored(EXPLICIT)
    for directive in ["no-cache", "max-age=0", "min-fresh=1000", "only-if-cached"]:
        assert lookup(entry, hdrs(cache_control=directive), now=T0 + 1).action is Action.SERVE
    assert lookup(entry, hdrs(pragma="no-cache")).action is Action.SERVE


def test_request_no_cache_forces_revalidation_when_respected() -> None:
    entry = stored(EXPLICIT)
    decision = lookup(entry, hdrs(cache_control="no-cache"), policy=RESPECT)
    assert (decision.action, decision.reason, decision.fwd) == (
        Action.REVALIDATE,
        "request-no-cache",
        "request",
    )
    assert lookup(entry, hdrs(pragma="no-cache"), policy=RESPECT).action is Action.REVALIDATE
    ignored_pragma = hdrs(pragma="no-cache", cache_control="max-stale")
    assert lookup(entry, ignored_pragma, policy=RESPECT).action is Action.SERVE


def test_request_no_cache_on_a_stale_response_revalidates_without_serving_stale() -> None:
    entry = stored(hdrs(cache_control="max-age=10, stale-while-revalidate=100"))
    request = hdrs(cache_control="no-cache, max-stale")
    decision = lookup(entry, request, policy=RESPECT, now=T0 + 20)
    assert (decision.action, decision.fwd) == (Action.REVALIDATE, "stale")


def test_request_max_age() -> None:
    entry = stored(EXPLICIT, at=T0)
    request = hdrs(cache_control="max-age=10")
    assert lookup(entry, request, policy=RESPECT, now=T0 + 10).action is Action.SERVE
    late = lookup(entry, request, policy=RESPECT, now=T0 + 11)
    assert (late.action, late.reason) == (Action.REVALIDATE, "request-max-age")


def test_request_min_fresh() -> None:
    entry = stored(EXPLICIT, at=T0)
    request = hdrs(cache_control="min-fresh=20")
    assert lookup(entry, request, policy=RESPECT, now=T0 + 40).action is Action.SERVE
    short = lookup(entry, request, policy=RESPECT, now=T0 + 41)
    assert (short.action, short.reason) == (Action.REVALIDATE, "request-min-fresh")


def test_request_max_stale() -> None:
    entry = stored(EXPLICIT, at=T0)
    bounded = hdrs(cache_control="max-stale=5")
    assert lookup(entry, bounded, policy=RESPECT, now=T0 + 65).reason == "max-stale"
    assert lookup(entry, bounded, policy=RESPECT, now=T0 + 66).action is Action.REVALIDATE
    anything = hdrs(cache_control="max-stale")
    assert lookup(entry, anything, policy=RESPECT, now=T0 + 10**6).action is Action.SERVE
    assert lookup(entry, anything, now=T0 + 61).action is Action.REVALIDATE  # not respected


def test_request_max_stale_refused_for_s_maxage() -> None:
    entry = stored(hdrs(cache_control="s-maxage=60"))
    request = hdrs(cache_control="max-stale")
    assert lookup(entry, request, policy=RESPECT, now=T0 + 61).action is Action.REVALIDATE


def test_request_max_stale_still_bounded_by_request_max_age() -> None:
    entry = stored(EXPLICIT, at=T0)
    request = hdrs(cache_control="max-stale=100, max-age=70")
    assert lookup(entry, request, policy=RESPECT, now=T0 + 70).reason == "max-stale"
    assert lookup(entry, request, policy=RESPECT, now=T0 + 71).action is Action.REVALIDATE


def test_pragma_without_no_cache_changes_nothing() -> None:
    entry = stored(EXPLICIT)
    assert lookup(entry, hdrs(pragma="x-other"), policy=RESPECT).action is Action.SERVE


def test_request_max_age_disables_stale_while_revalidate() -> None:
    entry = stored(hdrs(cache_control="max-age=10, stale-while-revalidate=100"))
    request = hdrs(cache_control="max-age=5")
    assert lookup(entry, request, policy=RESPECT, now=T0 + 20).action is Action.REVALIDATE


def test_request_only_if_cached_gives_504_when_nothing_fresh_enough() -> None:
    entry = stored(EXPLICIT)
    request = hdrs(cache_control="only-if-cached")
    assert lookup(entry, request, policy=RESPECT, now=T0 + 1).action is Action.SERVE
    stale = lookup(entry, request, policy=RESPECT, now=T0 + 61)
    assert (stale.action, stale.reason) == (Action.GATEWAY_TIMEOUT, "only-if-cached")
    assert decide_miss(request, policy=RESPECT).action is Action.GATEWAY_TIMEOUT
    assert decide_miss(request, policy=DEFAULT).action is Action.FORWARD


def test_request_no_store_is_still_served_from_cache() -> None:
    entry = stored(EXPLICIT)
    assert lookup(entry, hdrs(cache_control="no-store"), policy=RESPECT).action is Action.SERVE


def test_decide_miss() -> None:
    assert decide_miss([], policy=DEFAULT) == LookupDecision(Action.FORWARD, "miss", fwd="uri-miss")


def test_authorized_request_served_only_from_permitted_responses() -> None:
    plain = stored(EXPLICIT)
    decision = lookup(plain, AUTH)
    assert (decision.action, decision.reason, decision.fwd) == (
        Action.FORWARD,
        "authorization",
        "bypass",
    )
    assert lookup(stored(hdrs(cache_control="public, max-age=60")), AUTH).action is Action.SERVE
    assert lookup(plain, AUTH, policy=CachePolicy(cache_authorized=True)).action is Action.SERVE


def test_ttl_mode_private_request_headers_are_not_served() -> None:
    entry = stored(policy=TTL)
    decision = lookup(entry, hdrs(cookie="session=1"), policy=TTL)
    assert (decision.action, decision.reason) == (Action.FORWARD, "private-request-header")
    public = stored(hdrs(cache_control="public"), policy=TTL)
    assert lookup(public, hdrs(x_api_key="k"), policy=TTL).action is Action.SERVE
    opt_in = CachePolicy(ttl=60, cache_private_requests=True)
    assert lookup(entry, hdrs(cookie="session=1"), policy=opt_in).action is Action.SERVE
    assert lookup(entry, hdrs(cookie="session=1"), policy=DEFAULT).action is Action.SERVE
