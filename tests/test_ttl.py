"""The one TTL rule (fastapi_cachekit.ttl), and that every entry point applies it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from fastapi_cachekit import (
    DEFAULT_TTL,
    CacheMiddleware,
    CacheService,
    ConfigurationError,
    InvalidTTLError,
    MemoryBackend,
)
from fastapi_cachekit.fastapi.http import CachePolicy
from fastapi_cachekit.ttl import MAX_TTL, MIN_TTL, DefaultTTL, bounded_ttl, ttl_seconds


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [
        (None, None),
        (30, 30.0),
        (0.25, 0.25),
        (timedelta(minutes=5), 300.0),
        (0.0014, 0.001),
        (MAX_TTL, float(MAX_TTL)),
    ],
)
def test_accepted_ttls_in_seconds(ttl: object, seconds: float | None) -> None:
    assert ttl_seconds(ttl) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        (0, "at least 1 ms"),
        (-1, "at least"),
        (float("nan"), "at least"),
        (float("-inf"), "at least"),
        (float("inf"), "at most 2147483648 s"),
        (1e300, "at most"),
        (2**70, "at most"),
        (10**400, "at most"),
        (timedelta.max, "at most"),
        (True, "timedelta, seconds"),
        ("60", "timedelta, seconds"),
    ],
)
def test_refused_ttls_say_what_to_pass(ttl: object, message: str) -> None:
    with pytest.raises(InvalidTTLError, match=message):
        ttl_seconds(ttl)  # type: ignore[arg-type]


def test_the_default_marker_is_public() -> None:
    assert isinstance(DEFAULT_TTL, DefaultTTL)
    assert repr(DEFAULT_TTL) == "DEFAULT_TTL"


@pytest.mark.parametrize(
    ("seconds", "bounded"),
    [(0.0, MIN_TTL), (-5.0, MIN_TTL), (60.0, 60.0), (1e300, MAX_TTL), (float("inf"), MAX_TTL)],
)
def test_computed_lifetimes_are_brought_into_range(seconds: float, bounded: float) -> None:
    assert bounded_ttl(seconds) == bounded


@pytest.mark.parametrize("ttl", [0.0001, 10**400, 2.0**40])
def test_an_http_policy_applies_the_same_rule(ttl: float) -> None:
    with pytest.raises(ConfigurationError, match="ttl must be"):
        CachePolicy(ttl=ttl)


@pytest.mark.parametrize("max_age", ["2147483648", "9" * 30])
async def test_the_middleware_stores_the_longest_http_lifetime(max_age: str) -> None:
    """A lifetime the middleware works out itself (max-age plus the revalidation window) is
    brought within the bounds, not refused."""
    calls = 0

    async def endpoint(request: Request) -> Response:
        nonlocal calls
        calls += 1
        headers = {"cache-control": f"max-age={max_age}", "etag": '"v1"'}
        return PlainTextResponse(str(calls), headers=headers)

    cache = CacheService(MemoryBackend())
    app = CacheMiddleware(Starlette(routes=[Route("/", endpoint)]), cache=cache)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert [(await client.get("/")).text for _ in range(2)] == ["1", "1"]
    await cache.close()
