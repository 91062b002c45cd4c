"""`serve_stale_on_error`: a shared cache may serve a stale response when the origin fails
(RFC 9111 §4.2.4, as RFC 5861 §4 `stale-if-error` does when the response asks): a bounded
window, off by default, never when `must-revalidate`, `proxy-revalidate`, `no-cache` or
`s-maxage` forbid serving stale; Cache-Status says a stale response was served."""

from __future__ import annotations

from datetime import timedelta

import pytest
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.fastapi.http import (
    CachePolicy,
    StoredResponse,
    decide_storage,
    stale_on_error,
)

from .middleware_support import Harness, Origin, cache_status

pytestmark = pytest.mark.usefixtures("http_backend")

T0 = 1_700_000_000.0


class Failing(Origin):
    """An origin that answers with `cache_control` (and `etag` when given) until told to
    fail with a status or an exception."""

    def __init__(self, cache_control: str = "max-age=10", etag: str | None = None) -> None:
        super().__init__(b"good body")
        self.cache_control = cache_control
        self.etag = etag
        self.fail: int | Exception | None = None

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail is not None:
            return Response(b"broken", status_code=self.fail)
        headers = {"cache-control": self.cache_control}
        if self.etag is not None:
            headers["etag"] = self.etag
        return Response(self.body, headers=headers)


def entry_for(cache_control: str) -> StoredResponse:
    headers = [(b"cache-control", cache_control.encode()), (b"etag", b'"a"')]
    plan = decide_storage(
        "GET", [], 200, headers, policy=CachePolicy(), request_time=T0, response_time=T0
    ).plan
    assert plan is not None
    entry = plan.entry(b"body")
    assert entry is not None
    return entry


def test_rfc9111_4_2_4_stale_on_error_window_and_what_forbids_it() -> None:
    entry = entry_for("max-age=10")
    assert stale_on_error(entry, T0 + 50) is None  # off by default
    assert stale_on_error(entry, T0 + 50, window=60) == "stale-on-error"
    assert stale_on_error(entry, T0 + 70, window=60) == "stale-on-error"
    assert stale_on_error(entry, T0 + 71, window=60) is None
    own = entry_for("max-age=10, stale-if-error=100")
    assert stale_on_error(own, T0 + 50, window=60) == "stale-if-error"
    for forbidding in ("must-revalidate", "proxy-revalidate", "no-cache", "s-maxage=10"):
        forbidden = entry_for(f"max-age=10, {forbidding}")
        assert stale_on_error(forbidden, T0 + 20, window=60) is None, forbidding


@pytest.mark.parametrize("failure", [500, 502, 503, RuntimeError("boom"), ConnectionError()])
async def test_rfc9111_4_2_4_a_failing_app_gets_the_stale_response(
    failure: int | Exception,
) -> None:
    origin = Failing()  # no validators, no stale-if-error: kept only for this option
    async with Harness(origin.app, serve_stale_on_error=300) as h:
        await h.get()
        origin.fail = failure
        h.clock.advance(100)
        response = await h.get()
    assert (response.status_code, response.content) == (200, b"good body")
    assert response.headers["age"] == "100"
    status = cache_status(response)
    assert status.startswith("fastapi-cachekit; fwd=stale; ")
    assert status.endswith("; ttl=-90; detail=stale-on-error")


async def test_rfc9111_4_2_4_the_window_is_bounded() -> None:
    origin = Failing(etag='"a"')
    async with Harness(origin.app, serve_stale_on_error=timedelta(minutes=1)) as h:
        await h.get()
        origin.fail = 500
        h.clock.advance(71)
        response = await h.get()
    assert (response.status_code, response.content) == (500, b"broken")
    assert cache_status(response) == "fastapi-cachekit; fwd=stale; fwd-status=500"


async def test_rfc9111_4_2_4_off_by_default() -> None:
    origin = Failing(etag='"a"')
    async with Harness(origin.app) as h:
        await h.get()
        origin.fail = 503
        h.clock.advance(11)
        response = await h.get()
    assert response.status_code == 503


@pytest.mark.parametrize(
    "forbidding", ["must-revalidate", "proxy-revalidate", "no-cache", "s-maxage=10"]
)
async def test_rfc9111_4_2_4_never_when_the_response_forbids_stale(forbidding: str) -> None:
    origin = Failing(f"max-age=10, {forbidding}", etag='"a"')
    async with Harness(origin.app, serve_stale_on_error=300) as h:
        await h.get()
        origin.fail = 500
        h.clock.advance(20)
        response = await h.get()
    assert (response.status_code, response.content) == (500, b"broken")


@pytest.mark.parametrize("window", [True, False, -1, float("nan"), "300"])
def test_serve_stale_on_error_must_be_seconds(window: object) -> None:
    with pytest.raises(ConfigurationError, match="serve_stale_on_error"):
        Harness(Origin().app, serve_stale_on_error=window)
