"""Freshness lifetime and age (RFC 9111 §4.2.1-§4.2.3, §5.1): `http/freshness.py`."""

from __future__ import annotations

import pytest

from fastapi_cachekit.fastapi.http import (
    CachePolicy,
    age_header_value,
    corrected_initial_age,
    current_age,
    explicit_lifetime,
    format_http_date,
    heuristic_lifetime,
    whole_seconds,
)
from tests.fastapi.middleware_support import Harness, Origin, cache_status, is_hit

from .support import T0, T0_HTTP, cc, hdrs, lookup, names, store, stored


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


# `Age` sent as a list by some intermediaries (RFC 9111 §5.1, RFC 9110 §5.3): the first member
# of the combined value counts; an invalid first member makes the freshness untrustworthy.


def test_rfc9111_5_1_first_member_of_a_one_line_list_counts() -> None:
    assert age_header_value([b"7200, 0"]) == 7200
    assert age_header_value([b"0, 7200"]) == 0


def test_rfc9111_5_1_two_lines_mean_the_same_as_one_line() -> None:
    assert age_header_value([b"0", b"7200"]) == age_header_value([b"0, 7200"]) == 0
    assert age_header_value([b"7200", b"0"]) == 7200


def test_rfc9110_5_6_1_empty_members_are_skipped() -> None:
    assert age_header_value([b" , 30"]) == 30
    assert age_header_value([b""]) == 0


def test_rfc9111_5_1_invalid_first_member_is_none_even_with_valid_others() -> None:
    for value in (b"abc, 5", b"-1", b"1.5", b"7200a"):
        assert age_header_value([value]) is None, value


def test_rfc9111_5_1_a_list_age_makes_the_response_stale() -> None:
    entry = stored(hdrs(cache_control="max-age=3600", age="7200, 0", etag='"a"'))
    assert entry.initial_age == 7200
    assert lookup(entry).ttl < 0


def test_rfc9111_5_1_an_invalid_age_is_never_served_fresh() -> None:
    entry = stored(hdrs(cache_control="max-age=3600", age="soon", etag='"a"'))
    assert entry.lifetime == 0
    assert lookup(entry).action.value == "revalidate"


async def test_rfc9111_5_1_one_line_age_list_through_the_middleware() -> None:
    origin = Origin(headers=[("cache-control", "max-age=3600"), ("age", "7200, 0")])
    async with Harness(origin.app) as h:
        await h.get("/")
        second = await h.get("/")
    assert not is_hit(second), cache_status(second)
    assert origin.calls == 2


async def test_rfc9111_5_1_two_line_age_first_zero_is_fresh() -> None:
    origin = Origin(headers=[("cache-control", "max-age=3600"), ("age", "0"), ("age", "7200")])
    async with Harness(origin.app) as h:
        await h.get("/")
        second = await h.get("/")
    assert is_hit(second), cache_status(second)
    assert second.headers["age"] == "0"
