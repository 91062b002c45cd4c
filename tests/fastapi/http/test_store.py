"""Storing responses (RFC 9111 §3, §3.1, §3.3, §3.5 and the safety defaults): `http/store.py`."""

from __future__ import annotations

import pytest

from fastapi_cachekit.errors import SerializationError
from fastapi_cachekit.fastapi.http import (
    Action,
    CachePolicy,
    encode_entry,
    hit_response,
    storable_headers,
    strip_hop_by_hop,
)

from .support import AUTH, EXPLICIT, RESPECT, TTL, cc, hdrs, lookup, names, store, stored


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_responses_are_stored(method: str) -> None:
    assert store(EXPLICIT, method=method).reason == "method"
    assert store(EXPLICIT).store


@pytest.mark.parametrize("status", [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])
def test_default_cacheable_statuses_are_stored_with_ttl(status: int) -> None:
    assert store(status=status, policy=TTL).reason == "ttl"


@pytest.mark.parametrize("status", [201, 302, 303, 307, 400, 403, 500, 502, 503])
def test_other_statuses_are_stored_only_with_explicit_freshness(status: int) -> None:
    assert store(status=status, policy=TTL).reason == "no-explicit-freshness"
    assert store(EXPLICIT, status=status, policy=TTL).reason == "max-age"


@pytest.mark.parametrize("status", [100, 101, 206, 304, 600])
def test_partial_not_modified_and_informational_are_never_stored(status: int) -> None:
    assert store(EXPLICIT, status=status).reason == "status"


def test_cacheable_statuses_are_configurable() -> None:
    policy = CachePolicy(ttl=60, cacheable_statuses=frozenset({200}))
    assert store(status=404, policy=policy).reason == "no-explicit-freshness"


def test_no_store_is_never_stored() -> None:
    assert store(hdrs(cache_control="no-store, max-age=60, public")).reason == "no-store"
    assert store(hdrs(cache_control="no-store"), policy=TTL).reason == "no-store"


def test_must_understand_stores_understood_statuses_despite_no_store() -> None:
    understood = store(hdrs(cache_control="must-understand, no-store, max-age=60"))
    assert understood.reason == "max-age"
    unknown = store(hdrs(cache_control="must-understand, no-store, max-age=60"), status=299)
    assert unknown.reason == "must-understand"


def test_unqualified_private_is_never_stored() -> None:
    assert store(hdrs(cache_control="private, max-age=60")).reason == "private"
    assert store(hdrs(cache_control="private"), policy=TTL).reason == "private"


def test_qualified_private_strips_fields_from_stored_copy_only() -> None:
    response = hdrs(cache_control='private="X-User", max-age=60', x_user="alice", x_other="1")
    original = list(response)
    entry = stored(response)
    assert b"x-user" not in names(entry.headers)
    assert (b"x-other", b"1") in entry.headers
    assert response == original  # the response passed on now is untouched


def test_qualified_no_cache_strips_fields_and_keeps_reuse() -> None:
    entry = stored(hdrs(cache_control='no-cache="X-Token", max-age=60', x_token="t"))
    assert b"x-token" not in names(entry.headers)
    assert not entry.no_cache
    assert lookup(entry).action is Action.SERVE


def test_unqualified_no_cache_is_stored_but_revalidated_before_every_use() -> None:
    decision = store(hdrs(cache_control="no-cache", etag='"v1"'))
    assert decision.reason == "no-cache"
    assert decision.plan is not None
    entry = decision.plan.entry(b"x")
    assert entry is not None
    assert entry.no_cache
    result = lookup(entry)
    assert result.action is Action.REVALIDATE
    assert result.fwd == "stale"
    fresh_looking = stored(hdrs(cache_control="no-cache, max-age=600", etag='"v1"'))
    assert lookup(fresh_looking).action is Action.REVALIDATE


def test_unqualified_no_cache_without_validator_is_not_stored() -> None:
    assert store(hdrs(cache_control="no-cache")).reason == "no-cache-without-validator"


def test_set_cookie_responses_not_stored_by_default() -> None:
    response = hdrs(cache_control="max-age=60", set_cookie="id=1")
    assert store(response).reason == "set-cookie"
    opted_in = stored(response, policy=CachePolicy(store_set_cookie=True))
    assert (b"set-cookie", b"id=1") in opted_in.headers


def test_set_cookie_named_by_private_is_stripped_then_stored() -> None:
    entry = stored(hdrs(cache_control='max-age=60, private="Set-Cookie"', set_cookie="id=1"))
    assert b"set-cookie" not in names(entry.headers)


@pytest.mark.parametrize(
    ("directives", "reason"),
    [
        ("max-age=60", "authorization"),
        ("public, max-age=60", "max-age"),
        ("s-maxage=60", "s-maxage"),
        ("must-revalidate, max-age=60", "max-age"),
    ],
)
def test_authorized_requests_need_public_s_maxage_or_must_revalidate(
    directives: str, reason: str
) -> None:
    assert store(hdrs(cache_control=directives), request=AUTH).reason == reason


def test_cache_authorized_opts_in() -> None:
    policy = CachePolicy(cache_authorized=True)
    assert store(EXPLICIT, request=AUTH, policy=policy).store


@pytest.mark.parametrize(
    "field", ["authorization", "proxy-authorization", "cookie", "x-api-key", "X-Api-Key"]
)
def test_ttl_mode_private_request_headers_are_not_stored(field: str) -> None:
    request = [(field.lower().encode(), b"v")]
    assert store(policy=TTL, request=request).reason in {
        "private-request-header",
        "authorization",
    }
    # Explicit max-age without public does not make it shareable in ttl mode either.
    assert not store(EXPLICIT, policy=TTL, request=request).store


@pytest.mark.parametrize("directives", ["public", "s-maxage=30"])
def test_ttl_mode_private_request_headers_allowed_when_explicitly_shareable(
    directives: str,
) -> None:
    request = hdrs(cookie="session=1")
    assert store(hdrs(cache_control=directives), policy=TTL, request=request).store


def test_ttl_mode_private_request_headers_opt_in_and_custom_list() -> None:
    cookie = hdrs(cookie="session=1")
    assert store(policy=CachePolicy(ttl=60, cache_private_requests=True), request=cookie).store
    custom = CachePolicy(ttl=60, private_request_headers=frozenset({b"X-Tenant"}))
    assert custom.private_request_headers == {b"x-tenant"}
    assert store(policy=custom, request=cookie).store
    assert store(policy=custom, request=hdrs(x_tenant="a")).reason == "private-request-header"


def test_cache_authorized_also_lifts_the_ttl_mode_rule_for_authorization() -> None:
    policy = CachePolicy(ttl=60, cache_authorized=True)
    assert store(policy=policy, request=AUTH).store
    assert lookup(stored(policy=policy, request=AUTH), AUTH, policy=policy).action is Action.SERVE
    assert store(policy=policy, request=hdrs(cookie="s=1")).reason == "private-request-header"


def test_private_request_headers_do_not_matter_without_ttl_mode() -> None:
    assert store(EXPLICIT, request=hdrs(cookie="session=1", x_api_key="k")).store


def test_body_size_limit() -> None:
    policy = CachePolicy(max_body_bytes=10)
    assert store(hdrs(cache_control="max-age=60", content_length="11"), policy=policy).reason == (
        "body-too-large"
    )
    plan = store(EXPLICIT, policy=policy).plan
    assert plan is not None
    assert plan.accepts_size(10)
    assert not plan.accepts_size(11)
    assert plan.entry(b"x" * 11) is None
    assert plan.entry(b"x" * 10) is not None
    unlimited = store(EXPLICIT, policy=CachePolicy(max_body_bytes=None)).plan
    assert unlimited is not None
    assert unlimited.entry(b"x" * (2 << 20)) is not None


def test_incomplete_body_is_not_stored() -> None:
    plan = store(hdrs(cache_control="max-age=60", content_length="5")).plan
    assert plan is not None
    assert plan.entry(b"1234") is None
    assert plan.entry(b"12345") is not None


def test_content_length_added_when_missing() -> None:
    entry = stored(EXPLICIT, b"12345")
    assert (b"content-length", b"5") in entry.headers
    no_content = stored(EXPLICIT, b"", status=204)
    assert b"content-length" not in names(no_content.headers)


def test_vary_star_is_never_stored() -> None:
    assert store(hdrs(cache_control="max-age=60", vary="Accept, *")).reason == "vary-star"


def test_responses_without_freshness_are_not_stored_without_ttl() -> None:
    assert store(hdrs(content_type="text/html")).reason == "no-freshness"


@pytest.mark.parametrize(
    ("directives", "reason"),
    [("max-age=60", "max-age"), ("s-maxage=60", "s-maxage"), ("public, max-age=1", "max-age")],
)
def test_explicit_freshness_is_stored_without_ttl(directives: str, reason: str) -> None:
    assert store(hdrs(cache_control=directives)).reason == reason


def test_request_no_store_only_when_request_directives_are_respected() -> None:
    request = hdrs(cache_control="no-store")
    assert store(EXPLICIT, request=request).store
    assert store(EXPLICIT, request=request, policy=RESPECT).reason == "request-no-store"
    pragma_only = hdrs(pragma="no-cache")
    assert store(EXPLICIT, request=pragma_only, policy=RESPECT).store


def test_hop_by_hop_and_connection_named_headers_are_not_stored() -> None:
    response = [
        (b"cache-control", b"max-age=60"),
        (b"connection", b"close, X-Conn-Only"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"te", b"trailers"),
        (b"trailer", b"x-checksum"),
        (b"upgrade", b"h2c"),
        (b"proxy-authenticate", b"Basic"),
        (b"proxy-authorization", b"x"),
        (b"proxy-connection", b"keep-alive"),
        (b"x-conn-only", b"1"),
        (b"x-kept", b"1"),
    ]
    kept = names(stored(response).headers)
    assert kept == [b"date", b"cache-control", b"x-kept", b"etag", b"content-length"]


def test_unknown_and_repeated_headers_are_stored_and_replayed_in_order() -> None:
    response = [
        (b"cache-control", b"max-age=60"),
        (b"link", b"</a>; rel=preload"),
        (b"x-custom", b"1"),
        (b"link", b"</b>; rel=preload"),
    ]
    entry = stored(response)
    assert [pair for pair in entry.headers if pair[0] in {b"link", b"x-custom"}] == response[1:]
    status, headers, body = hit_response(entry, lookup(entry), b"c; hit")
    assert (status, body) == (200, b"body")
    assert headers[1:5] == response  # after the Date, which storage puts first


def test_response_header_names_are_lowercased_when_stored() -> None:
    entry = stored([(b"Cache-Control", b"max-age=60"), (b"X-Thing", b"Value")])
    assert (b"x-thing", b"Value") in entry.headers
    assert entry.lifetime == 60


def test_header_with_nul_is_not_stored() -> None:
    assert store([(b"cache-control", b"max-age=60"), (b"x-bad", b"a\0b")]).reason == (
        "invalid-header"
    )


def test_app_etag_kept_and_flags_recorded() -> None:
    entry = stored(hdrs(cache_control="public, s-maxage=60, must-revalidate", etag='W/"x"'))
    assert entry.etag == b'W/"x"'
    assert not entry.etag_generated
    assert entry.origin_etag == b'W/"x"'
    assert entry.shareable
    assert entry.authorized_ok
    assert entry.forbids_stale
    assert entry.has_validators


def test_storable_headers_and_strip_hop_by_hop() -> None:
    headers = hdrs(connection="x-a", x_a="1", x_b="2", age="3", x_secret="s")
    assert strip_hop_by_hop(headers) == hdrs(x_b="2", age="3", x_secret="s")
    assert storable_headers(headers, cc('private="x-secret"')) == hdrs(x_b="2")


def test_oversized_validators_are_not_stored() -> None:
    huge = '"' + "x" * 70_000 + '"'
    assert store(hdrs(cache_control="max-age=60", etag=huge)).reason == "invalid-header"
    entry = stored(EXPLICIT)._replace(etag=huge.encode())
    with pytest.raises(SerializationError):
        encode_entry(entry)
