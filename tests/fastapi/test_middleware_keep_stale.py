"""Stale responses stay stored for a bounded, configurable window (`keep_stale`) while they can
still be used: a request's `max-stale` (RFC 9111 §5.2.1.2, §4.2.4), a revalidation (§4.3),
an app failure (`serve_stale_on_error`). Time is a FakeClock that also drives the backend."""

from __future__ import annotations

import pytest

from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.fastapi.http import CachePolicy, decide_storage

from .middleware_support import Harness, Origin, cache_status, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")

T0 = 1_700_000_000.0


def storage_ttl(cache_control: str, policy: CachePolicy, *extra: tuple[bytes, bytes]) -> float:
    headers = [(b"cache-control", cache_control.encode()), *extra]
    plan = decide_storage(
        "GET", [], 200, headers, policy=policy, request_time=T0, response_time=T0
    ).plan
    assert plan is not None
    return plan.storage_ttl


def test_rfc9111_4_2_4_a_stale_response_is_kept_only_while_it_can_be_used() -> None:
    plain = CachePolicy()
    directives = CachePolicy(respect_request_cache_control=True, keep_stale=100)
    on_error = CachePolicy(stale_on_error=300, keep_stale=100)
    etag = (b"etag", b'"a"')
    assert storage_ttl("max-age=2", plain) == 2  # nothing could use it stale
    assert storage_ttl("max-age=2", plain, etag) == 2 + 600  # revalidation
    assert storage_ttl("max-age=2", directives) == 2 + 100  # a request's max-stale
    assert storage_ttl("max-age=2", on_error) == 2 + 300  # an app failure
    assert storage_ttl("max-age=2, stale-if-error=900", directives) == 2 + 900


@pytest.mark.parametrize("forbidding", ["must-revalidate", "proxy-revalidate", "s-maxage=2"])
def test_rfc9111_5_2_2_a_response_that_forbids_stale_is_not_kept_for_it(forbidding: str) -> None:
    policy = CachePolicy(respect_request_cache_control=True, stale_on_error=300)
    assert storage_ttl(f"max-age=2, {forbidding}", policy) == 2


async def test_rfc9111_5_2_1_2_request_max_stale_is_served_after_the_freshness_ends() -> None:
    origin = Origin(headers=[("cache-control", "max-age=2")])
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        await h.get()
        h.clock.advance(500)
        stale = await h.get(cache_control="max-stale=1000")
    assert is_hit(stale), cache_status(stale)
    assert cache_status(stale) == "fastapi-cachekit; hit; ttl=-498"
    assert stale.headers["age"] == "500"
    assert origin.calls == 1


async def test_rfc9111_5_2_1_2_max_stale_is_bounded_by_keep_stale() -> None:
    origin = Origin(headers=[("cache-control", "max-age=2")])
    async with Harness(origin.app, respect_request_cache_control=True, keep_stale=100) as h:
        await h.get()
        h.clock.advance(101)
        kept = await h.get(cache_control="max-stale=1000")
        h.clock.advance(2)  # 2 + 100 s after the store: dropped
        gone = await h.get(cache_control="max-stale=1000")
    assert cache_status(kept) == "fastapi-cachekit; hit; ttl=-99"
    assert cache_status(gone) == "fastapi-cachekit; fwd=uri-miss; stored"
    assert origin.calls == 2


async def test_a_stale_response_nothing_can_use_is_not_kept() -> None:
    origin = Origin(headers=[("cache-control", "max-age=2")])
    async with Harness(origin.app) as h:
        await h.get()
        h.clock.advance(3)
        after = await h.get()
    assert cache_status(after) == "fastapi-cachekit; fwd=uri-miss; stored"


@pytest.mark.parametrize("keep_stale", [-1, float("inf"), "600", True])
def test_keep_stale_must_be_seconds(keep_stale: object) -> None:
    with pytest.raises(ConfigurationError, match="keep_stale"):
        Harness(Origin().app, keep_stale=keep_stale)
