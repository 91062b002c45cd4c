"""Unbounded numbers in headers: delta-seconds of any length saturate at 2^31 (RFC 9111
§1.2.2), and nothing a client or the app sends in them makes the cache answer 500."""

from __future__ import annotations

import pytest

from fastapi_cachekit.fastapi.http import (
    MAX_DELTA_SECONDS,
    CachePolicy,
    age_header_value,
    decide_storage,
    parse_cache_control,
    parse_delta_seconds,
)
from tests.fastapi.middleware_support import T0, Harness, Origin, is_hit

HUGE = "9" * 5000  # past int()'s 4,300-digit limit for str -> int


def test_a_delta_of_any_length_saturates() -> None:
    assert parse_delta_seconds(HUGE) == MAX_DELTA_SECONDS
    assert parse_delta_seconds("0" * 5000 + "7") == 7  # leading zeros are still a number
    assert parse_delta_seconds(f'"{HUGE}"') == MAX_DELTA_SECONDS


def test_every_delta_directive_saturates() -> None:
    names = ("max-age", "s-maxage", "max-stale", "min-fresh")
    names += ("stale-while-revalidate", "stale-if-error")
    cc = parse_cache_control([", ".join(f"{name}={HUGE}" for name in names).encode()])
    values = [cc.max_age, cc.s_maxage, cc.max_stale, cc.min_fresh]
    values += [cc.stale_while_revalidate, cc.stale_if_error]
    assert values == [MAX_DELTA_SECONDS] * 6


def test_an_age_of_any_length_saturates() -> None:
    assert age_header_value([HUGE.encode()]) == MAX_DELTA_SECONDS


def test_a_content_length_of_any_length_is_not_stored() -> None:
    headers = [(b"cache-control", b"max-age=60"), (b"content-length", HUGE.encode())]
    decision = decide_storage(
        "GET",
        [],
        200,
        headers,
        policy=CachePolicy(max_body_bytes=None),
        request_time=T0,
        response_time=T0,
    )
    assert decision.plan is not None
    assert decision.plan.entry(b"hello") is None


@pytest.mark.usefixtures("http_backend")
@pytest.mark.parametrize(
    "header", ["cache-control", "age", "content-length"], ids=lambda name: name
)
async def test_huge_numbers_from_the_app_are_not_a_500(header: str) -> None:
    value = f"max-age={HUGE}" if header == "cache-control" else HUGE
    origin = Origin(headers=[("cache-control", "max-age=60"), (header, value)])
    async with Harness(origin.app, max_body_bytes=None) as h:
        first = await h.get("/")
        second = await h.get("/")
    assert (first.status_code, second.status_code) == (200, 200)


@pytest.mark.usefixtures("http_backend")
@pytest.mark.parametrize("directive", ["max-age", "max-stale", "min-fresh", "stale-if-error"])
async def test_huge_request_directives_from_a_client_are_not_a_500(directive: str) -> None:
    origin = Origin()
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        await h.get("/")
        answer = await h.get("/", cache_control=f"{directive}={HUGE}")
    assert answer.status_code == 200
    assert is_hit(answer) or origin.calls == 2
