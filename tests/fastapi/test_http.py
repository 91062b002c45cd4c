"""The HTTP caching rules (fastapi_cachekit.fastapi.http): pure functions, no event loop."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cachekit.errors import ConfigurationError, SerializationError
from fastapi_cachekit.fastapi.http import (
    MAGIC,
    MAX_DELTA_SECONDS,
    NO_DIRECTIVES,
    Action,
    CacheControl,
    CachePolicy,
    CacheStatus,
    Headers,
    LookupDecision,
    PathFilter,
    Revalidation,
    StoreDecision,
    StoredResponse,
    TargetURL,
    age_header_value,
    canonical_url,
    combined_value,
    corrected_initial_age,
    current_age,
    decide_lookup,
    decide_miss,
    decide_revalidation,
    decide_storage,
    decode_entry,
    encode_entry,
    explicit_lifetime,
    format_http_date,
    generate_etag,
    heuristic_lifetime,
    hit_response,
    invalidation_targets,
    merge_headers,
    normalise_field_value,
    not_modified,
    not_modified_headers,
    parse_cache_control,
    parse_entity_tags,
    parse_http_date,
    request_cache_control,
    request_key,
    revalidation_headers,
    split_list,
    stale_if_error_allows,
    storable_headers,
    strip_hop_by_hop,
    strong_match,
    validators_agree,
    vary_field_names,
    vary_matches,
    vary_values,
    weak_match,
    whole_seconds,
    without_conditionals,
)

T0 = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
T0_HTTP = b"Tue, 14 Nov 2023 22:13:20 GMT"
DEFAULT = CachePolicy()
TTL = CachePolicy(ttl=60)
RESPECT = CachePolicy(respect_request_cache_control=True)


def cc(*lines: str) -> CacheControl:
    return parse_cache_control([line.encode() for line in lines])


def hdrs(**fields: str) -> list[tuple[bytes, bytes]]:
    return [(name.replace("_", "-").encode(), value.encode()) for name, value in fields.items()]


def store(
    headers: Headers = (),
    *,
    status: int = 200,
    method: str = "GET",
    request: Headers = (),
    policy: CachePolicy = DEFAULT,
    request_time: float = T0,
    response_time: float = T0,
) -> StoreDecision:
    return decide_storage(
        method,
        request,
        status,
        headers,
        policy=policy,
        request_time=request_time,
        response_time=response_time,
    )


def stored(
    headers: Headers = (),
    body: bytes = b"body",
    *,
    status: int = 200,
    request: Headers = (),
    policy: CachePolicy = DEFAULT,
    at: float = T0,
) -> StoredResponse:
    decision = store(headers, status=status, request=request, policy=policy, response_time=at)
    assert decision.plan is not None, decision.reason
    entry = decision.plan.entry(body)
    assert entry is not None
    return entry


def lookup(
    entry: StoredResponse,
    request: Headers = (),
    *,
    policy: CachePolicy = DEFAULT,
    now: float = T0,
) -> LookupDecision:
    return decide_lookup(entry, request, policy=policy, now=now)


def names(headers: Headers) -> list[bytes]:
    return [name for name, _ in headers]


# --- Cache-Control parsing (RFC 9111 §5.2, §4.2.1, §1.2.2) --------------------------------


def test_cc_directive_names_are_case_insensitive() -> None:
    parsed = cc("Max-Age=60, NO-STORE, Public, S-MaxAge=5")
    assert parsed.max_age == 60
    assert parsed.s_maxage == 5
    assert parsed.no_store
    assert parsed.public


def test_cc_quoted_and_unquoted_values() -> None:
    assert cc('max-age="30"').max_age == 30
    assert cc("max-age=30").max_age == 30
    assert cc("max-age = 30").max_age == 30


def test_cc_several_lines_and_comma_lists() -> None:
    parsed = cc(
        "public, max-age=10", "must-revalidate", "stale-if-error=5, stale-while-revalidate=7"
    )
    assert parsed.public
    assert parsed.max_age == 10
    assert parsed.must_revalidate
    assert parsed.stale_if_error == 5
    assert parsed.stale_while_revalidate == 7


def test_cc_empty_members_are_ignored() -> None:
    assert cc(",, max-age=3 ,,").max_age == 3
    assert cc("") == NO_DIRECTIVES
    assert parse_cache_control([]) == NO_DIRECTIVES


def test_cc_comma_inside_quoted_field_list_does_not_split() -> None:
    parsed = cc('no-cache="Set-Cookie, X-Token", max-age=5')
    assert not parsed.no_cache
    assert parsed.no_cache_fields == {b"set-cookie", b"x-token"}
    assert parsed.max_age == 5


def test_cc_qualified_private_holds_lowercased_field_names() -> None:
    parsed = cc('private="Set-Cookie"', "private=X-User")
    assert not parsed.private
    assert parsed.private_fields == {b"set-cookie", b"x-user"}


def test_cc_unqualified_form_wins_over_qualified() -> None:
    parsed = cc('no-cache="x-a", no-cache, private="x-b", private')
    assert parsed.no_cache
    assert parsed.no_cache_fields == frozenset()
    assert parsed.private
    assert parsed.private_fields == frozenset()


def test_cc_empty_field_list_counts_as_unqualified() -> None:
    assert cc('no-cache=""').no_cache
    assert cc('private=""').private


def test_cc_duplicate_max_age_keeps_smallest() -> None:
    assert cc("max-age=60, max-age=10", "max-age=30").max_age == 10
    assert cc("s-maxage=9, s-maxage=90").s_maxage == 9
    assert cc("stale-while-revalidate=9, stale-while-revalidate=3").stale_while_revalidate == 3


def test_cc_duplicate_min_fresh_keeps_largest() -> None:
    assert cc("min-fresh=5, min-fresh=50").min_fresh == 50


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", '""', "+5", "0x10", "\uff11\uff12"])
def test_cc_invalid_max_age_means_stale(value: str) -> None:
    assert cc(f"max-age={value}").max_age == 0
    assert cc(f"s-maxage={value}").s_maxage == 0
    assert cc(f"max-age=60, max-age={value}").max_age == 0


def test_cc_max_age_without_value_means_stale() -> None:
    assert cc("max-age").max_age == 0


def test_cc_invalid_stale_extensions_allow_no_staleness() -> None:
    parsed = cc("stale-while-revalidate=soon, stale-if-error=-3")
    assert parsed.stale_while_revalidate == 0
    assert parsed.stale_if_error == 0


def test_cc_delta_seconds_capped_at_2_31() -> None:
    assert cc("max-age=99999999999999999999").max_age == MAX_DELTA_SECONDS == 2**31


def test_cc_max_stale_without_value_accepts_any_staleness() -> None:
    assert cc("max-stale").max_stale == MAX_DELTA_SECONDS
    assert cc("max-stale=30").max_stale == 30
    assert cc("max-stale=bad").max_stale == 0


def test_cc_invalid_min_fresh_is_most_restrictive() -> None:
    assert cc("min-fresh=bad").min_fresh == MAX_DELTA_SECONDS


def test_cc_private_beats_public() -> None:
    parsed = cc("public, private")
    assert parsed.private
    assert not parsed.public


def test_cc_boolean_directives() -> None:
    parsed = cc(
        "no-transform, proxy-revalidate, must-understand, only-if-cached, immutable, no-store"
    )
    assert parsed.no_transform
    assert parsed.proxy_revalidate
    assert parsed.must_understand
    assert parsed.only_if_cached
    assert parsed.immutable
    assert parsed.no_store
    assert cc("no-store=1").no_store  # an argument where none is expected: still present


def test_cc_unknown_directives_ignored() -> None:
    assert cc('community="UCI", x-ext=1, foo') == NO_DIRECTIVES
    assert cc("foo, max-age=4").max_age == 4


def test_cc_explicit_freshness_flag() -> None:
    assert cc("max-age=1").has_explicit_freshness
    assert cc("s-maxage=1").has_explicit_freshness
    assert not cc("public").has_explicit_freshness


def test_pragma_no_cache_only_without_cache_control() -> None:
    assert request_cache_control(hdrs(pragma="no-cache")).no_cache
    assert request_cache_control(hdrs(pragma="x, No-Cache")).no_cache
    assert not request_cache_control(hdrs(pragma="no-cache", cache_control="max-age=5")).no_cache
    assert request_cache_control(hdrs(pragma="other")) == NO_DIRECTIVES
    assert request_cache_control([]) == NO_DIRECTIVES


def test_split_list_honours_quotes_and_escapes() -> None:
    assert split_list('a, b="x,y", c="q\\"," , , d') == ["a", 'b="x,y"', 'c="q\\","', "d"]


_DIRECTIVES = st.sampled_from(
    ["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error", "min-fresh"]
)


@given(st.lists(st.tuples(_DIRECTIVES, st.integers(0, 10**6), st.booleans()), min_size=1))
def test_cc_parse_property_numeric_directives(items: list[tuple[str, int, bool]]) -> None:
    """Rendering directives (quoted or not, in any case) and parsing gives the conservative
    value of each: the smallest, or the largest for min-fresh."""
    text = ", ".join(
        f'{name.upper()}="{value}"' if quoted else f"{name}={value}"
        for name, value, quoted in items
    )
    parsed = parse_cache_control([text.encode()])
    for name in {name for name, _, _ in items}:
        values = [value for n, value, _ in items if n == name]
        expected = max(values) if name == "min-fresh" else min(values)
        assert getattr(parsed, name.replace("-", "_")) == expected


@given(st.binary(max_size=200))
def test_cc_parser_never_raises(raw: bytes) -> None:
    assert isinstance(parse_cache_control([raw]), CacheControl)


# --- HTTP dates (RFC 9110 §5.6.7) ----------------------------------------------------------

SUNDAY = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT


def test_parse_imf_fixdate() -> None:
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") == SUNDAY
    assert parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT ") == SUNDAY


def test_parse_rfc850_date() -> None:
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == SUNDAY


def test_rfc850_two_digit_year_more_than_50_years_ahead_is_last_century() -> None:
    now = parse_http_date(b"Sat, 01 Jan 2050 00:00:00 GMT")
    assert now is not None
    in_2099 = parse_http_date(b"Thursday, 01-Jan-99 00:00:00 GMT", now=now)
    in_1999 = parse_http_date(b"Friday, 01-Jan-99 00:00:00 GMT", now=T0)
    assert in_2099 == parse_http_date(b"Thu, 01 Jan 2099 00:00:00 GMT")
    assert in_1999 == parse_http_date(b"Fri, 01 Jan 1999 00:00:00 GMT")


def test_parse_asctime_date() -> None:
    assert parse_http_date(b"Sun Nov  6 08:49:37 1994") == SUNDAY
    assert parse_http_date(b"Sun Nov 16 08:49:37 1994") == SUNDAY + 10 * 86400


@pytest.mark.parametrize(
    "value",
    [
        b"0",
        b"-1",
        b"",
        b"tomorrow",
        b"Sun, 30 Feb 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 24:00:00 GMT",
        b"Sun, 06 Nov 1994 08:49:37 PST",
        b"Sun, 6 Nov 1994 08:49:37 GMT",
        b"1994-11-06T08:49:37Z",
        b"Sun, 06 Nov 0000 08:49:37 GMT",
    ],
)
def test_invalid_dates_are_none(value: bytes) -> None:
    assert parse_http_date(value) is None


def test_leap_second_is_read_as_59() -> None:
    assert parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT") == parse_http_date(
        b"Sat, 31 Dec 2016 23:59:59 GMT"
    )


def test_format_http_date() -> None:
    assert format_http_date(SUNDAY) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(T0 + 0.9) == T0_HTTP


@given(st.integers(0, 253402300799))
def test_http_date_round_trip(timestamp: int) -> None:
    assert parse_http_date(format_http_date(timestamp)) == timestamp


@given(st.binary(max_size=64))
def test_date_parser_never_raises(raw: bytes) -> None:
    assert parse_http_date(raw) is None or isinstance(parse_http_date(raw), float)


# --- Freshness lifetime (RFC 9111 §4.2.1, §4.2.2) -----------------------------------------


def test_lifetime_s_maxage_over_max_age_over_expires() -> None:
    expires = [format_http_date(T0 + 1000)]
    assert explicit_lifetime(cc("max-age=10, s-maxage=20"), T0, expires) == 20
    assert explicit_lifetime(cc("max-age=10"), T0, expires) == 10
    assert explicit_lifetime(cc(""), T0, expires) == 1000
    assert explicit_lifetime(cc("public"), T0, []) is None


def test_lifetime_from_expires_minus_date() -> None:
    expires = format_http_date(T0 + 100).decode()
    decision = store(hdrs(date=T0_HTTP.decode(), expires=expires), response_time=T0 + 10)
    assert decision.reason == "expires"
    assert decision.plan is not None
    assert decision.plan.response.lifetime == 100


@pytest.mark.parametrize("expires", [b"0", b"-1", b"soon", b"Sun, 30 Feb 1994 08:49:37 GMT"])
def test_unparseable_or_zero_expires_is_already_stale(expires: bytes) -> None:
    assert explicit_lifetime(cc(""), T0, [expires]) == 0
    assert store([(b"expires", expires)]).reason == "stale-on-arrival"


def test_expires_in_the_past_is_stale() -> None:
    assert explicit_lifetime(cc(""), T0, [format_http_date(T0 - 5)]) == 0


def test_two_expires_lines_are_stale() -> None:
    later = format_http_date(T0 + 100)
    assert explicit_lifetime(cc(""), T0, [later, later]) == 0


def test_missing_date_means_time_received() -> None:
    plan = store(hdrs(cache_control="max-age=60"), response_time=T0 + 7).plan
    assert plan is not None
    assert plan.response.date == T0 + 7
    assert (b"date", format_http_date(T0 + 7)) in plan.response.headers


def test_invalid_date_means_time_received_but_is_kept() -> None:
    plan = store(hdrs(cache_control="max-age=60", date="yesterday"), response_time=T0).plan
    assert plan is not None
    assert plan.response.date == T0
    assert (b"date", b"yesterday") in plan.response.headers


def test_heuristic_ten_percent_of_date_minus_last_modified() -> None:
    assert heuristic_lifetime(T0, T0 - 1000, cap=3600) == 100
    decision = store(
        hdrs(date=T0_HTTP.decode(), last_modified=format_http_date(T0 - 1000).decode())
    )
    assert decision.reason == "heuristic"
    assert decision.plan is not None
    assert decision.plan.response.lifetime == 100


def test_heuristic_is_capped_by_the_policy() -> None:
    policy = CachePolicy(max_heuristic_lifetime=30)
    modified = format_http_date(T0 - 10**6).decode()
    plan = store(hdrs(last_modified=modified), policy=policy).plan
    assert plan is not None
    assert plan.response.lifetime == 30


def test_heuristic_needs_last_modified_not_after_date() -> None:
    assert heuristic_lifetime(T0, T0 + 5, cap=100) is None
    assert heuristic_lifetime(T0, None, cap=100) is None
    assert store(hdrs(last_modified="garbage")).reason == "no-freshness"


def test_heuristic_only_for_heuristically_cacheable_statuses_or_public() -> None:
    modified = format_http_date(T0 - 1000).decode()
    assert store(hdrs(last_modified=modified), status=302).reason == "no-explicit-freshness"
    public = store(hdrs(last_modified=modified, cache_control="public"), status=302)
    assert public.reason == "heuristic"


def test_ttl_fills_missing_freshness() -> None:
    decision = store(hdrs(content_type="text/plain"), policy=TTL)
    assert decision.reason == "ttl"
    assert decision.plan is not None
    assert decision.plan.response.lifetime == 60


@pytest.mark.parametrize(("header", "lifetime"), [("max-age=5", 5), ("s-maxage=500", 500)])
def test_ttl_never_overrides_the_response(header: str, lifetime: float) -> None:
    plan = store(hdrs(cache_control=header), policy=TTL).plan
    assert plan is not None
    assert plan.response.lifetime == lifetime


def test_ttl_takes_precedence_over_heuristic() -> None:
    modified = format_http_date(T0 - 10**5).decode()
    plan = store(hdrs(last_modified=modified), policy=TTL).plan
    assert plan is not None
    assert plan.response.lifetime == 60


def test_ttl_does_not_apply_to_statuses_needing_explicit_freshness() -> None:
    assert store(status=302, policy=TTL).reason == "no-explicit-freshness"


# --- Age (RFC 9111 §4.2.3, §5.1) -----------------------------------------------------------


def test_corrected_initial_age_uses_age_header_and_response_delay() -> None:
    # The app said Age: 10 and took 2 s: 12 s old although its Date is "now".
    assert corrected_initial_age(age_value=10, date=T0, request_time=T0 - 2, response_time=T0) == 12
    # A Date 30 s in the past makes it 30 s old (apparent age wins).
    assert corrected_initial_age(age_value=0, date=T0 - 30, request_time=T0, response_time=T0) == 30
    # A Date in the future (clock skew) never makes the age negative.
    assert corrected_initial_age(age_value=0, date=T0 + 99, request_time=T0, response_time=T0) == 0


def test_current_age_adds_resident_time() -> None:
    assert current_age(5, T0, T0 + 20) == 25
    assert current_age(5, T0, T0 - 20) == 5  # a clock going backwards adds nothing


def test_app_age_header_counts_and_is_not_replayed() -> None:
    entry = stored(hdrs(cache_control="max-age=100", age="40"))
    assert entry.initial_age == 40
    assert b"age" not in names(entry.headers)
    decision = lookup(entry, now=T0 + 10)
    assert (decision.age, decision.ttl) == (50, 50)


def test_age_header_value_absent_is_zero_invalid_is_none() -> None:
    assert age_header_value([]) == 0
    assert age_header_value([b"abc"]) is None
    assert age_header_value([b"-5"]) is None
    assert age_header_value([b"3", b"9", b"x"]) == 3


def test_whole_seconds_floor_and_cap() -> None:
    assert whole_seconds(9.99) == 9
    assert whole_seconds(-3) == 0
    assert whole_seconds(1e12) == 2**31


def test_entry_age_and_ttl_arithmetic() -> None:
    entry = stored(hdrs(cache_control="max-age=60"), at=T0)
    assert entry.age(T0 + 15.5) == 15.5
    assert entry.ttl(T0 + 15.5) == 44.5
    assert entry.ttl(T0 + 70) == -10


# --- Storing (RFC 9111 §3, §3.5 and the safety rules) --------------------------------------

EXPLICIT = hdrs(cache_control="max-age=60")


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


AUTH = hdrs(authorization="Bearer secret")


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


def test_stale_on_arrival_without_validators_is_not_stored() -> None:
    assert store(hdrs(cache_control="max-age=10", age="20")).reason == "stale-on-arrival"
    assert store(hdrs(cache_control="max-age=0")).reason == "stale-on-arrival"


def test_stale_on_arrival_with_validators_is_kept_for_revalidation() -> None:
    plan = store(hdrs(cache_control="max-age=0", etag='"a"')).plan
    assert plan is not None
    assert plan.storage_ttl == DEFAULT.keep_stale


def test_storage_ttl_covers_freshness_stale_windows_and_revalidation() -> None:
    plan = store(
        hdrs(cache_control="max-age=60, stale-while-revalidate=30, stale-if-error=90")
    ).plan
    assert plan is not None
    assert plan.storage_ttl == 60 + 90
    with_validator = store(hdrs(cache_control="max-age=60", last_modified=T0_HTTP.decode())).plan
    assert with_validator is not None
    assert with_validator.storage_ttl == 60 + DEFAULT.keep_stale
    forbidding = store(hdrs(cache_control="max-age=60, must-revalidate, stale-if-error=90")).plan
    assert forbidding is not None
    assert forbidding.storage_ttl == 60


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


def test_header_values_and_combined_value() -> None:
    headers = [(b"accept", b"a"), (b"x", b"1"), (b"accept", b"b")]
    assert combined_value(headers, b"accept") == b"a, b"
    assert combined_value(headers, b"x") == b"1"
    assert combined_value(headers, b"missing") is None


# --- Stored representation (binary encoding) -----------------------------------------------


def test_entry_round_trip() -> None:
    entry = stored(
        hdrs(cache_control="max-age=60, stale-if-error=5", vary="Accept-Encoding, X-Absent"),
        b"\x00\xffbinary body",
        request=hdrs(accept_encoding="gzip"),
    )
    raw = encode_entry(entry)
    assert raw.startswith(MAGIC)
    assert decode_entry(raw) == entry
    decoded = decode_entry(raw)
    assert decoded is not None
    assert decoded.vary == ((b"accept-encoding", b"gzip"), (b"x-absent", None))


def test_entry_encoding_is_compact() -> None:
    entry = stored(EXPLICIT, b"x" * 1000)
    header_bytes = sum(len(name) + len(value) + 2 for name, value in entry.headers)
    assert len(encode_entry(entry)) < 1000 + header_bytes + len(entry.etag) + 100


_header_bytes = st.binary(max_size=20).filter(lambda value: b"\0" not in value)


@given(
    status=st.integers(100, 599),
    headers=st.lists(st.tuples(_header_bytes, _header_bytes), max_size=6),
    body=st.binary(max_size=300),
    times=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=7, max_size=7
    ),
    flags=st.integers(0, 63),
    etag=_header_bytes,
    last_modified=_header_bytes,
    vary=st.lists(st.tuples(_header_bytes, st.none() | _header_bytes), max_size=3),
)
def test_entry_round_trip_property(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    times: list[float],
    flags: int,
    etag: bytes,
    last_modified: bytes,
    vary: list[tuple[bytes, bytes | None]],
) -> None:
    entry = StoredResponse._make(
        (status, tuple(headers), body, *times, flags, etag, last_modified, tuple(vary))
    )
    assert decode_entry(encode_entry(entry)) == entry


@given(st.binary(max_size=300))
def test_decode_garbage_returns_none_or_entry(raw: bytes) -> None:
    result = decode_entry(raw)
    assert result is None or isinstance(result, StoredResponse)
    assert decode_entry(MAGIC + raw) is None or isinstance(
        decode_entry(MAGIC + raw), StoredResponse
    )


def test_decode_truncated_wrong_magic_or_version_is_none() -> None:
    raw = encode_entry(stored(EXPLICIT, b"hello"))
    assert decode_entry(b"") is None
    assert decode_entry(b"{}") is None
    assert decode_entry(b'{"status": 200}' * 10) is None
    assert decode_entry(raw[:20]) is None
    assert decode_entry(b"\xffCK\x02" + raw[4:]) is None
    header_only = raw[: struct.calcsize("<4sHHdddddddIIHH") + 10]
    assert decode_entry(header_only) is None
    for cut in range(len(raw) - 5):
        result = decode_entry(raw[:cut])
        assert result is None or result.body != b"hello"


def test_encode_rejects_nul() -> None:
    entry = stored(EXPLICIT)._replace(headers=((b"x", b"a\0b"),))
    with pytest.raises(SerializationError):
        encode_entry(entry)


def test_decode_corrupt_sections_is_none() -> None:
    raw = bytearray(encode_entry(stored(EXPLICIT, b"hello")))
    size = struct.calcsize("<4sHHdddddddIIHH")
    header_len = struct.unpack_from("<I", raw, size - 12)[0]
    odd = bytearray(raw)
    odd[size + 1] = 0  # a NUL inside the first name: an odd number of header parts
    assert decode_entry(bytes(odd)) is None
    bad_status = bytearray(raw)
    struct.pack_into("<H", bad_status, 4, 42)
    assert decode_entry(bytes(bad_status)) is None
    vary = stored(hdrs(cache_control="max-age=60", vary="x-a"), request=hdrs(x_a="1"))
    raw_vary = bytearray(encode_entry(vary))
    vary_start = size + struct.unpack_from("<I", raw_vary, size - 12)[0]
    assert raw_vary[vary_start + 4] == ord("+")
    odd_vary = bytearray(raw_vary)
    odd_vary[vary_start + 1] = 0  # "x\0a": an odd number of Vary parts
    assert decode_entry(bytes(odd_vary)) is None
    raw_vary[vary_start + 4] = ord("?")
    assert decode_entry(bytes(raw_vary)) is None
    assert header_len > 0


def test_oversized_validators_are_not_stored() -> None:
    huge = '"' + "x" * 70_000 + '"'
    assert store(hdrs(cache_control="max-age=60", etag=huge)).reason == "invalid-header"
    entry = stored(EXPLICIT)._replace(etag=huge.encode())
    with pytest.raises(SerializationError):
        encode_entry(entry)


# --- Vary (RFC 9111 §4.1) ------------------------------------------------------------------


def test_vary_field_names_lowercased_unique_in_order() -> None:
    headers = [(b"vary", b"Accept-Encoding, accept"), (b"vary", b"ACCEPT-ENCODING, Origin")]
    assert vary_field_names(headers) == (b"accept-encoding", b"accept", b"origin")


def test_vary_normalisation_folds_whitespace_and_combines_lines() -> None:
    assert normalise_field_value(b"accept", [b"text/html ,  application/json"]) == (
        b"application/json,text/html"
    )
    assert normalise_field_value(b"accept", [b"text/html", b"application/json"]) == (
        b"application/json,text/html"
    )
    assert normalise_field_value(b"x-a", [b"  a \t b  "]) == b"a b"
    assert normalise_field_value(b"x-a", [b"Mixed"]) == b"Mixed"
    assert normalise_field_value(b"accept-encoding", [b"GZIP, Br"]) == b"br,gzip"
    assert normalise_field_value(b"x-a", []) is None


def test_vary_absent_field_only_matches_absent() -> None:
    stored_values = vary_values([b"x-a"], [])
    assert stored_values == ((b"x-a", None),)
    assert vary_matches(stored_values, [])
    assert not vary_matches(stored_values, [(b"x-a", b"")])
    assert not vary_matches(vary_values([b"x-a"], [(b"x-a", b"")]), [])


def test_vary_selects_the_stored_variant() -> None:
    entry = stored(
        hdrs(cache_control="max-age=60", vary="Accept-Encoding"),
        request=hdrs(accept_encoding="gzip, br"),
    )
    assert lookup(entry, hdrs(accept_encoding="gzip,br")).action is Action.SERVE
    assert lookup(entry, [(b"accept-encoding", b"gzip"), (b"accept-encoding", b"br")]).action is (
        Action.SERVE
    )
    miss = lookup(entry, hdrs(accept_encoding="identity"))
    assert (miss.action, miss.fwd) == (Action.FORWARD, "vary-miss")
    assert lookup(entry).action is Action.FORWARD


@given(st.lists(st.binary(max_size=15).filter(lambda v: b"\0" not in v), max_size=3))
def test_vary_normalisation_is_idempotent(values: list[bytes]) -> None:
    once = normalise_field_value(b"accept", values)
    assert once is None or normalise_field_value(b"accept", [once]) == once


# --- ETags and conditional requests (RFC 9110 §8.8.3, §13) ---------------------------------


def test_generated_etag_is_strong_quoted_and_deterministic() -> None:
    tag = generate_etag(b"hello")
    assert tag == b'"' + hashlib.blake2b(b"hello", digest_size=16).hexdigest().encode() + b'"'
    assert tag == b'"46fb7408d4f285228f4af516ea25851b"'  # fixed: same in every process
    assert generate_etag(b"hello!") != tag


def test_stored_response_without_etag_gets_a_generated_one() -> None:
    entry = stored(EXPLICIT, b"hello")
    assert entry.etag == generate_etag(b"hello")
    assert entry.etag_generated
    assert entry.origin_etag == b""
    assert (b"etag", entry.etag) in entry.headers
    assert not entry.has_validators


def test_parse_entity_tags() -> None:
    assert parse_entity_tags([b'"a", W/"b" ,"c,d"', b'"e"']) == (
        False,
        (b'"a"', b'W/"b"', b'"c,d"', b'"e"'),
    )
    assert parse_entity_tags([b"*"]) == (True, ())
    assert parse_entity_tags([b'junk, "ok", W/bad, "unterminated']) == (False, (b'"ok"',))
    assert parse_entity_tags([]) == (False, ())


@pytest.mark.parametrize(
    ("a", "b", "strong", "weak"),
    [
        (b'W/"1"', b'W/"1"', False, True),
        (b'W/"1"', b'W/"2"', False, False),
        (b'W/"1"', b'"1"', False, True),
        (b'"1"', b'"1"', True, True),
    ],
)
def test_weak_and_strong_comparison_rfc_9110_table(
    a: bytes, b: bytes, strong: bool, weak: bool
) -> None:
    assert strong_match(a, b) is strong
    assert weak_match(a, b) is weak


def _validated_entry() -> StoredResponse:
    return stored(
        hdrs(
            cache_control="max-age=60",
            etag='"v1"',
            last_modified=format_http_date(T0 - 100).decode(),
            content_type="text/plain",
            content_location="/doc",
            expires=format_http_date(T0 + 60).decode(),
            vary="Accept",
        )
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'"v1"', True),
        (b'W/"v1"', True),
        (b'"v0", "v1"', True),
        (b"*", True),
        (b'"v2"', False),
        (b"v1", False),
    ],
)
def test_if_none_match(value: bytes, expected: bool) -> None:
    assert not_modified(_validated_entry(), [value], []) is expected


def test_if_modified_since_only_without_if_none_match() -> None:
    entry = _validated_entry()
    since = format_http_date(T0 - 100)
    earlier = format_http_date(T0 - 101)
    assert not_modified(entry, [], [since])
    assert not not_modified(entry, [], [earlier])
    assert not not_modified(entry, [b'"other"'], [since])  # If-None-Match takes precedence


@pytest.mark.parametrize("values", [[b"yesterday"], [T0_HTTP, T0_HTTP], []])
def test_invalid_if_modified_since_is_ignored(values: list[bytes]) -> None:
    assert not not_modified(_validated_entry(), [], values)


def test_if_modified_since_uses_date_without_last_modified() -> None:
    entry = stored(hdrs(cache_control="max-age=60", date=T0_HTTP.decode()))
    assert not_modified(entry, [], [T0_HTTP])
    assert not not_modified(entry, [], [format_http_date(T0 - 1)])


def test_conditionals_only_apply_to_stored_200() -> None:
    entry = stored(hdrs(cache_control="max-age=60", etag='"v1"'), status=404)
    assert not not_modified(entry, [b'"v1"'], [])
    assert not lookup(entry, hdrs(if_none_match='"v1"')).not_modified


def test_not_modified_headers_are_those_a_200_would_carry_minus_content() -> None:
    kept = names(not_modified_headers(_validated_entry()))
    assert sorted(kept) == sorted(
        [b"cache-control", b"etag", b"content-location", b"expires", b"vary", b"date"]
    )


def test_not_modified_headers_keep_last_modified_only_without_etag() -> None:
    entry = _validated_entry()._replace(etag=b"")
    assert b"last-modified" in names(not_modified_headers(entry))


def test_fresh_hit_with_matching_client_conditional_gives_304() -> None:
    entry = _validated_entry()
    decision = lookup(entry, hdrs(if_none_match='W/"v1"'), now=T0 + 5)
    assert decision.not_modified
    status, headers, body = hit_response(entry, decision, CacheStatus().hit(decision.ttl))
    assert (status, body) == (304, b"")
    assert b"content-type" not in names(headers)
    assert b"content-length" not in names(headers)
    assert headers[-2:] == [(b"age", b"5"), (b"cache-status", b"fastapi-cachekit; hit; ttl=55")]


# --- Serving: lookups (RFC 9111 §4, §4.2.4, §5.2.1; RFC 5861) ------------------------------


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
    entry = _validated_entry()
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


# --- Revalidation outcomes (RFC 9111 §3.2, §4.3.3, §4.3.4) --------------------------------


def test_304_freshens_the_stored_response() -> None:
    entry = _validated_entry()
    result = decide_revalidation(
        entry,
        304,
        hdrs(
            cache_control="max-age=120",
            etag='"v1"',
            x_new="1",
            date=format_http_date(T0 + 100).decode(),
        ),
        [],
        policy=DEFAULT,
        request_time=T0 + 100,
        response_time=T0 + 100,
    )
    assert result.outcome is Revalidation.UPDATED
    assert result.reason == "freshened"
    assert result.entry is not None
    assert result.plan is not None
    fresh = result.entry
    assert fresh.body == entry.body
    assert fresh.lifetime == 120
    assert fresh.response_time == T0 + 100
    assert (b"cache-control", b"max-age=120") in fresh.headers
    assert (b"x-new", b"1") in fresh.headers
    assert (b"content-type", b"text/plain") in fresh.headers
    assert result.serve == LookupDecision(Action.SERVE, "revalidated", 0, 120)
    assert decode_entry(encode_entry(fresh)) == fresh


def test_304_cannot_change_the_headers_describing_the_stored_body() -> None:
    entry = _validated_entry()
    update = hdrs(
        etag='"v1"',
        content_type="application/evil",
        content_length="99999",
        content_encoding="gzip",
        transfer_encoding="chunked",
    )
    fresh, plan = _freshened(entry, update)
    assert (b"content-type", b"text/plain") in fresh.headers
    assert (b"content-length", b"4") in fresh.headers
    assert b"content-encoding" not in names(fresh.headers)
    assert b"transfer-encoding" not in names(fresh.headers)
    assert plan is not None


def _freshened(entry: StoredResponse, update: Headers) -> tuple[StoredResponse, object]:
    result = decide_revalidation(
        entry, 304, update, [], policy=DEFAULT, request_time=T0 + 100, response_time=T0 + 100
    )
    assert result.outcome is Revalidation.UPDATED
    assert result.entry is not None
    return result.entry, result.plan


def test_304_without_date_restarts_age_at_time_received() -> None:
    entry = stored(hdrs(cache_control="max-age=60", etag='"v1"'), at=T0)
    fresh, _ = _freshened(entry, hdrs(etag='"v1"'))
    assert fresh.date == T0 + 100
    assert (b"date", format_http_date(T0 + 100)) in fresh.headers
    assert lookup(fresh, now=T0 + 110).action is Action.SERVE


def test_304_age_header_counts() -> None:
    entry = stored(hdrs(cache_control="max-age=60", etag='"v1"'))
    fresh, _ = _freshened(entry, hdrs(etag='"v1"', age="50"))
    assert fresh.initial_age == 50
    assert b"age" not in names(fresh.headers)


def test_304_with_a_different_strong_etag_is_a_mismatch() -> None:
    entry = _validated_entry()
    result = decide_revalidation(
        entry, 304, hdrs(etag='"v2"'), [], policy=DEFAULT, request_time=T0, response_time=T0
    )
    assert result.outcome is Revalidation.MISMATCH


def test_validators_agree() -> None:
    entry = _validated_entry()
    assert validators_agree(entry, hdrs(etag='"v1"'))
    assert not validators_agree(entry, hdrs(etag='"v2"'))
    weak = stored(hdrs(cache_control="max-age=60", etag='W/"v1"'))
    assert validators_agree(weak, hdrs(etag='W/"v1"'))
    assert not validators_agree(weak, hdrs(etag='"v1"'))  # strong tag vs a weak stored one
    assert validators_agree(entry, hdrs(last_modified=format_http_date(T0 - 100).decode()))
    no_etag = stored(hdrs(cache_control="max-age=60", last_modified=T0_HTTP.decode()))
    assert not validators_agree(no_etag, hdrs(last_modified="Mon, 01 Jan 2001 00:00:00 GMT"))
    assert validators_agree(entry, [])


def test_304_keeps_a_generated_etag_consistent() -> None:
    entry = stored(hdrs(cache_control="max-age=60", last_modified=T0_HTTP.decode()), b"abc")
    fresh, _ = _freshened(entry, hdrs(cache_control="max-age=30"))
    assert fresh.etag == generate_etag(b"abc")
    assert fresh.etag_generated
    assert names(fresh.headers).count(b"etag") == 1


def test_304_that_makes_the_response_unstorable_removes_it() -> None:
    entry = _validated_entry()
    fresh, plan = _freshened(entry, hdrs(etag='"v1"', cache_control="no-store"))
    assert plan is None
    assert fresh.body == entry.body
    assert (b"cache-control", b"no-store") in fresh.headers


def test_full_response_replaces_the_stored_one() -> None:
    result = decide_revalidation(
        _validated_entry(),
        200,
        hdrs(cache_control="max-age=30", etag='"v2"'),
        [],
        policy=DEFAULT,
        request_time=T0,
        response_time=T0,
    )
    assert (result.outcome, result.reason) == (Revalidation.REPLACED, "max-age")
    assert result.plan is not None
    assert result.plan.response.etag == b'"v2"'


def test_unstorable_full_response_removes_the_stored_one() -> None:
    for status, headers in [(200, hdrs(cache_control="no-store")), (404, [])]:
        result = decide_revalidation(
            _validated_entry(),
            status,
            headers,
            [],
            policy=DEFAULT,
            request_time=T0,
            response_time=T0,
        )
        assert result.outcome is Revalidation.REMOVED


def test_server_error_within_stale_if_error_serves_stale() -> None:
    entry = stored(hdrs(cache_control="max-age=10, stale-if-error=60", etag='"v1"'))
    result = decide_revalidation(
        entry, 503, [], [], policy=DEFAULT, request_time=T0 + 30, response_time=T0 + 30
    )
    assert result.outcome is Revalidation.STALE_ON_ERROR
    assert result.entry == entry
    assert result.serve is not None
    assert (result.serve.age, result.serve.ttl) == (30, -20)
    late = decide_revalidation(
        entry, 500, [], [], policy=DEFAULT, request_time=T0 + 71, response_time=T0 + 71
    )
    assert late.outcome is Revalidation.ERROR


def test_revalidated_response_answers_the_clients_own_conditional() -> None:
    entry = _validated_entry()
    client = hdrs(if_none_match='"v1"')
    result = decide_revalidation(
        entry, 304, hdrs(etag='"v1"'), client, policy=DEFAULT, request_time=T0, response_time=T0
    )
    assert result.serve is not None
    assert result.serve.not_modified
    other = decide_revalidation(
        entry,
        304,
        hdrs(etag='"v1"'),
        hdrs(if_none_match='"v0"'),
        policy=DEFAULT,
        request_time=T0,
        response_time=T0,
    )
    assert other.serve is not None
    assert not other.serve.not_modified


def test_merge_headers_replaces_in_place_and_appends_new_fields() -> None:
    stored_headers = [*hdrs(a="1", b="2", c="3"), (b"b", b"2bis")]
    update = hdrs(b="new", d="4", content_length="1")
    assert merge_headers(stored_headers, update) == hdrs(a="1", b="new", c="3", d="4")


# --- Invalidation (RFC 9111 §4.4) ----------------------------------------------------------


def _targets(
    method: str = "POST",
    status: int = 201,
    headers: Headers = (),
    path: str = "/items",
    query: bytes = b"",
) -> list[TargetURL]:
    return invalidation_targets(method, status, "https", "api.example.com", path, query, headers)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PURGE"])
def test_unsafe_methods_invalidate_the_target(method: str) -> None:
    assert _targets(method, 200, query=b"b=2&a=1") == [
        TargetURL("https", "api.example.com", "/items", b"b=2&a=1")
    ]


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", 200), ("HEAD", 200), ("POST", 404), ("DELETE", 500), ("PUT", 101)],
)
def test_safe_methods_and_errors_invalidate_nothing(method: str, status: int) -> None:
    assert _targets(method, status) == []


def test_location_and_content_location_on_the_same_origin_are_invalidated() -> None:
    headers = hdrs(location="/items/7?x=1", content_location="../other")
    targets = _targets("POST", 201, headers, path="/items/new")
    assert [(t.path, t.query) for t in targets] == [
        ("/items/new", b""),
        ("/items/7", b"x=1"),
        ("/other", b""),
    ]
    absolute = hdrs(location="HTTPS://API.example.com:443/items/8")
    assert _targets(headers=absolute)[1].path == "/items/8"


def test_cross_origin_locations_are_ignored() -> None:
    for location in ["https://evil.example/items", "http://api.example.com/items/1", "//x.org/a"]:
        assert len(_targets(headers=hdrs(location=location))) == 1


def test_empty_or_malformed_locations_are_ignored() -> None:
    for location in ["", "   ", "http://[::1"]:
        assert len(_targets(headers=hdrs(location=location))) == 1


def test_target_keys_match_request_keys() -> None:
    target = _targets(headers=hdrs(location="/items/7?b=2&a=1"))[1]
    assert target.key == request_key("https", "api.example.com", "/items/7", b"a=1&b=2")
    assert target.canonical == "https://api.example.com/items/7?a=1&b=2"


# --- Cache-Status (RFC 9211) ---------------------------------------------------------------


def test_cache_status_hit() -> None:
    status = CacheStatus()
    assert status.hit(42) == b"fastapi-cachekit; hit; ttl=42"
    assert status.hit(-3) == b"fastapi-cachekit; hit; ttl=-3"


def test_cache_status_miss_stored_or_not() -> None:
    status = CacheStatus()
    assert status.forward("uri-miss", stored=True) == b"fastapi-cachekit; fwd=uri-miss; stored"
    assert status.forward("uri-miss") == b"fastapi-cachekit; fwd=uri-miss"


def test_cache_status_revalidation_and_request_forwarding() -> None:
    status = CacheStatus()
    assert status.forward("stale", fwd_status=304, ttl=60, stored=True) == (
        b"fastapi-cachekit; fwd=stale; fwd-status=304; ttl=60; stored"
    )
    assert status.forward("request", fwd_status=200) == (
        b"fastapi-cachekit; fwd=request; fwd-status=200"
    )
    assert status.forward("uri-miss", collapsed=True, detail="single flight") == (
        b'fastapi-cachekit; fwd=uri-miss; collapsed; detail="single flight"'
    )
    assert status.detail("only-if-cached") == b"fastapi-cachekit; detail=only-if-cached"


def test_cache_status_name_is_a_parameter() -> None:
    assert CacheStatus("edge/1").hit(1) == b"edge/1; hit; ttl=1"
    assert CacheStatus('my "cache"').hit(1) == b'"my \\"cache\\""; hit; ttl=1'
    with pytest.raises(ConfigurationError):
        CacheStatus("café")
    with pytest.raises(ConfigurationError):
        CacheStatus("")


def test_cache_status_rejects_unknown_fwd() -> None:
    with pytest.raises(ValueError, match="fwd must be one of"):
        CacheStatus().forward("nope")


def test_cache_status_repr() -> None:
    assert repr(CacheStatus("edge")) == "CacheStatus('edge')"


# --- Request keys and path globs -----------------------------------------------------------


def test_request_key_is_stable_across_processes() -> None:
    key = request_key("https", "Example.com", "/items", b"b=2&a=1")
    expected = hashlib.blake2b(b"https://example.com/items?a=1&b=2", digest_size=16).hexdigest()
    assert key == expected
    assert len(key) == 32


def test_request_key_normalises_scheme_host_port_and_query_encoding() -> None:
    base = request_key("http", "example.com", "/p", b"a=%41&b=x+y")
    assert request_key("HTTP", "EXAMPLE.com:80", "/p", b"b=x%20y&a=A") == base
    assert request_key("http", "example.com:8080", "/p", b"a=A&b=x y") != base
    assert request_key("https", "example.com:443", "/p") == request_key(
        "https", "example.com", "/p"
    )


def test_request_key_distinguishes_what_matters() -> None:
    base = request_key("http", "h", "/p", b"a=1")
    assert request_key("https", "h", "/p", b"a=1") != base
    assert request_key("http", "h2", "/p", b"a=1") != base
    assert request_key("http", "h", "/q", b"a=1") != base
    assert request_key("http", "h", "/p", b"a=2") != base
    # Repeated names keep their order; a decoded "?" in the path is not a query.
    assert request_key("http", "h", "/p", b"a=1&a=2") != request_key("http", "h", "/p", b"a=2&a=1")
    assert request_key("http", "h", "/p?a=1") != base
    assert canonical_url("http", "h", "/p?a=1") == "http://h/p%3Fa=1"


def test_request_key_is_bounded() -> None:
    assert len(request_key("http", "h", "/" + "x" * 10_000, b"q=" + b"y" * 10_000)) == 32


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.text(max_size=4)), max_size=6).map(dict))
def test_request_key_ignores_parameter_order(params: dict[str, str]) -> None:
    from urllib.parse import urlencode

    forward = urlencode(list(params.items())).encode()
    backward = urlencode(list(reversed(params.items()))).encode()
    assert request_key("http", "h", "/p", forward) == request_key("http", "h", "/p", backward)


def test_path_filter_globs() -> None:
    products = PathFilter.compile(include=["/products/*", "/health"], exclude=["*/private/*"])
    assert products.allows("/products/1")
    assert products.allows("/products/a/b/c")
    assert products.allows("/health")
    assert not products.allows("/healthz")
    assert not products.allows("/products/private/1")
    assert not products.allows("/orders")
    everything = PathFilter.compile(exclude=["/admin*"])
    assert everything.allows("/anything")
    assert not everything.allows("/admin/cache/stats")
    assert not PathFilter.compile(include=[]).allows("/")
    literal = PathFilter.compile(include=["/a.b/[x]?"])
    assert literal.allows("/a.b/[x]?")
    assert not literal.allows("/aXb/x")


# --- Policy --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"ttl": 0},
        {"ttl": -5},
        {"heuristic_fraction": 2},
        {"max_heuristic_lifetime": -1},
        {"keep_stale": -1},
        {"max_body_bytes": -1},
    ],
)
def test_policy_rejects_invalid_options(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        CachePolicy(**options)  # type: ignore[arg-type]


def test_policy_defaults() -> None:
    assert not DEFAULT.ttl_mode
    assert TTL.ttl_mode
    assert DEFAULT.private_request_headers == {
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"x-api-key",
    }
    assert b"if-none-match" in DEFAULT.lookup_fields


def test_policy_lookup_fields_are_only_those_the_options_use() -> None:
    assert DEFAULT.lookup_fields == {b"authorization", b"if-none-match", b"if-modified-since"}
    assert b"cookie" in TTL.lookup_fields
    assert b"cache-control" not in TTL.lookup_fields
    assert {b"cache-control", b"pragma"} <= RESPECT.lookup_fields
    assert b"cookie" not in RESPECT.lookup_fields
