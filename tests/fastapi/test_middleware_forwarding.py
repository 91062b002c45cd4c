"""CacheMiddleware: forwarding fields (X-Forwarded-Host, X-Original-URL, Forwarded, ...) are
keyed as if every response named them in Vary, so a response that reflects one is never
served to a request without it (cache poisoning), while requests through a proxy that always
sends the same value still share hits."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from .middleware_support import Harness, Origin, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")


class Reflecting(Origin):
    """An origin that builds links from the forwarding fields, as proxy-aware apps do."""

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        forwarded = request.headers.get("forwarded", "").removeprefix("host=")
        host = request.headers.get("x-forwarded-host", forwarded or request.headers["host"])
        path = request.headers.get("x-original-url", request.url.path)
        body = f"<a href='https://{host}{path}'>".encode()
        return Response(body, headers={"cache-control": "max-age=60"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("x-forwarded-host", "evil.example"),
        ("x-original-url", "/evil"),
        ("forwarded", "host=evil.example"),
    ],
)
async def test_a_response_to_a_forwarded_request_is_not_served_to_plain_requests(
    field: str, value: str
) -> None:
    origin = Reflecting()
    async with Harness(origin.app, ttl=60) as h:
        poisoned = await h.client.get("/page", headers={field: value})
        plain = await h.get("/page")
        plain_again = await h.get("/page")
    assert b"evil" in poisoned.content
    assert b"evil" not in plain.content
    assert not is_hit(plain)
    assert is_hit(plain_again)
    assert plain_again.content == plain.content


async def test_a_proxy_that_always_sends_the_same_value_shares_hits() -> None:
    origin = Reflecting()
    proxied = {"x-forwarded-host": "www.example.com", "x-forwarded-proto": "https"}
    async with Harness(origin.app, ttl=60) as h:
        await h.client.get("/page", headers=proxied)
        again = await h.client.get("/page", headers=proxied)
        other = await h.client.get("/page", headers={**proxied, "x-forwarded-host": "evil"})
    assert is_hit(again)
    assert b"www.example.com" in again.content
    assert not is_hit(other)
    assert b"evil" in other.content


async def test_a_plain_response_may_answer_a_forwarded_request() -> None:
    # The stored response did not see the field, so it cannot reflect it.
    origin = Reflecting()
    async with Harness(origin.app, ttl=60) as h:
        plain = await h.get("/page")
        forwarded = await h.client.get("/page", headers={"x-forwarded-host": "evil.example"})
    assert is_hit(forwarded)
    assert forwarded.content == plain.content
    assert origin.calls == 1
