"""`Age` is a singleton sent as a list by some intermediaries (RFC 9111 §5.1, RFC 9110 §5.3):
the first member of the combined value counts; an invalid first member makes the response's
freshness untrustworthy."""

from __future__ import annotations

from fastapi_cachekit.fastapi.http import (
    CachePolicy,
    StoredResponse,
    age_header_value,
    decide_lookup,
    decide_storage,
)
from tests.fastapi.middleware_support import Harness, Origin, cache_status, is_hit

T0 = 1_700_000_000.0


def stored(*headers: tuple[str, str]) -> StoredResponse:
    raw = [(name.encode(), value.encode()) for name, value in headers]
    plan = decide_storage(
        "GET", [], 200, raw, policy=CachePolicy(), request_time=T0, response_time=T0
    ).plan
    assert plan is not None
    entry = plan.entry(b"body")
    assert entry is not None
    return entry


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
    entry = stored(("cache-control", "max-age=3600"), ("age", "7200, 0"), ("etag", '"a"'))
    assert entry.initial_age == 7200
    assert decide_lookup(entry, [], policy=CachePolicy(), now=T0).ttl < 0


def test_rfc9111_5_1_an_invalid_age_is_never_served_fresh() -> None:
    entry = stored(("cache-control", "max-age=3600"), ("age", "soon"), ("etag", '"a"'))
    assert entry.lifetime == 0
    assert decide_lookup(entry, [], policy=CachePolicy(), now=T0).action.value == "revalidate"


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
