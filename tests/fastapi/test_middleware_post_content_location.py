"""A POST response with explicit freshness and a Content-Location naming its own target may
answer later GETs of that target (RFC 9110 §9.3.3, §8.7; RFC 9111 §3): same origin only, and
every GET storage rule (Set-Cookie, private, personal requests) still applies."""

from __future__ import annotations

import pytest

from fastapi_cachekit.fastapi.http import CachePolicy, decide_post_storage, post_content_target

from .middleware_support import Harness, Origin, cache_status, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")

T0 = 1_700_000_000.0


def named(location: str, path: str = "/items", query: bytes = b"") -> bool:
    headers = [(b"Content-Location", location.encode())]
    return post_content_target("http", "shop.example", path, query, headers) is not None


def test_rfc9110_9_3_3_content_location_must_name_the_target_itself() -> None:
    assert named("/items")
    assert named("http://shop.example/items")
    assert named("items")  # relative to /items
    assert named("/items?b=2&a=1", query=b"a=1&b=2")  # the same URL, query order aside
    assert not named("/items/7")  # another resource: RFC 9110 §8.7, not reusable here
    assert not named("http://evil.example/items")  # another origin
    assert not named("https://shop.example/items")  # another scheme is another origin
    assert not post_content_target("http", "shop.example", "/items", b"", [])


def test_rfc9110_9_3_3_needs_explicit_freshness_and_status_200() -> None:
    def reason(status: int, *headers: tuple[bytes, bytes]) -> str:
        return decide_post_storage(
            [],
            status,
            list(headers),
            policy=CachePolicy(ttl=60),
            request_time=T0,
            response_time=T0,
        ).reason

    assert reason(200, (b"cache-control", b"max-age=60")) == "max-age"
    assert reason(200) == "no-explicit-freshness"  # the cache's ttl does not count
    assert reason(201, (b"cache-control", b"max-age=60")) == "status"
    assert reason(200, (b"cache-control", b"max-age=60"), (b"set-cookie", b"s=1")) == "set-cookie"


async def test_rfc9110_9_3_3_a_later_get_is_answered_by_the_post_response() -> None:
    origin = Origin(
        b"saved", headers=[("cache-control", "max-age=60"), ("content-location", "/items")]
    )
    async with Harness(origin.app) as h:
        posted = await h.request("POST", "/items")
        got = await h.get("/items")
    assert posted.content == b"saved"
    assert "cache-status" not in posted.headers  # unsafe requests pass through untouched
    assert is_hit(got), cache_status(got)
    assert got.content == b"saved"
    assert origin.calls == 1


@pytest.mark.parametrize(
    "headers",
    [
        [("cache-control", "max-age=60")],  # no Content-Location
        [("cache-control", "max-age=60"), ("content-location", "/items/7")],
        [("cache-control", "max-age=60"), ("content-location", "http://other.example/items")],
        [("content-location", "/items")],  # no explicit freshness
        [("cache-control", "max-age=60, private"), ("content-location", "/items")],
    ],
)
async def test_rfc9110_9_3_3_other_post_responses_are_not_reused(
    headers: list[tuple[str, str]],
) -> None:
    origin = Origin(b"saved", headers=headers)
    async with Harness(origin.app, ttl=60) as h:
        await h.request("POST", "/items")
        got = await h.get("/items")
    assert not is_hit(got)
    assert origin.calls == 2


async def test_rfc9111_4_4_a_post_still_invalidates_what_it_does_not_replace() -> None:
    origin = Origin(b"v1", headers=[("cache-control", "max-age=60")])
    async with Harness(origin.app) as h:
        await h.get("/items")
        await h.request("POST", "/items")
        origin.body = b"v2"
        got = await h.get("/items")
    assert got.content == b"v2"
