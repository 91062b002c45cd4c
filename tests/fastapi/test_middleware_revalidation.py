"""CacheMiddleware: validation (RFC 9111 §4.3), serving stale (§4.2.4, RFC 5861) and request
directives (§5.2.1). Time is a FakeClock; background revalidations are awaited with drain()."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.fastapi.http import format_http_date

from .middleware_support import T0, Harness, Origin, cache_status, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")


class Validating(Origin):
    """An origin with ETag "v<version>" that answers If-None-Match itself (304), and can be
    told to fail."""

    def __init__(self, cache_control: str = "max-age=10") -> None:
        super().__init__(b"v1 body")
        self.cache_control = cache_control
        self.version = 1
        self.fail: int | Exception | None = None
        self.not_modified_etag: str | None = None

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        if isinstance(self.fail, Exception):
            raise self.fail
        if self.fail is not None:
            return Response(b"broken", status_code=self.fail)
        etag = f'"v{self.version}"'
        headers = {"cache-control": self.cache_control, "etag": etag}
        if request.headers.get("if-none-match") == etag:
            headers["etag"] = self.not_modified_etag or etag
            return Response(status_code=304, headers=headers)
        return Response(f"v{self.version} body".encode(), headers=headers)


async def test_stale_response_is_revalidated_and_a_304_freshens_it() -> None:
    origin = Validating()
    async with Harness(origin.app) as h:
        await h.get()
        h.clock.advance(11)
        revalidated = await h.get()
        h.clock.advance(5)
        hit = await h.get()
    assert origin.seen("if-none-match") == [None, '"v1"']
    assert revalidated.status_code == 200
    assert revalidated.content == b"v1 body"
    assert revalidated.headers["age"] == "0"
    assert cache_status(revalidated) == "fastapi-cachekit; fwd=stale; fwd-status=304; stored"
    assert cache_status(hit) == "fastapi-cachekit; hit; ttl=5"
    assert origin.calls == 2


async def test_last_modified_is_sent_as_if_modified_since_and_generated_etags_never() -> None:
    modified = format_http_date(T0 - 3600).decode()
    origin = Origin(headers=[("cache-control", "max-age=10"), ("last-modified", modified)])
    async with Harness(origin.app) as h:
        await h.get(if_none_match='"client"')
        h.clock.advance(11)
        await h.get(if_none_match='"client"')
    assert origin.seen("if-modified-since") == [None, modified]
    assert origin.seen("if-none-match") == ['"client"', None]  # the client's own is replaced


async def test_a_full_response_replaces_the_stored_one() -> None:
    origin = Validating()
    async with Harness(origin.app) as h:
        await h.get()
        origin.version = 2
        h.clock.advance(11)
        replaced = await h.get()
        hit = await h.get()
    assert replaced.content == hit.content == b"v2 body"
    assert cache_status(replaced) == "fastapi-cachekit; fwd=stale; fwd-status=200; stored"
    assert is_hit(hit)


async def test_a_full_response_that_may_not_be_stored_removes_the_stored_one() -> None:
    origin = Validating()
    async with Harness(origin.app) as h:
        await h.get()
        origin.version, origin.cache_control = 2, "no-store"
        h.clock.advance(11)
        fresh = await h.get()
        origin.cache_control = "max-age=10"
        again = await h.get()
    assert fresh.content == again.content == b"v2 body"
    assert origin.seen("if-none-match") == [None, '"v1"', None]  # nothing left to revalidate


async def test_the_clients_own_conditional_gets_the_304_after_revalidation() -> None:
    origin = Validating()
    async with Harness(origin.app) as h:
        await h.get()
        h.clock.advance(11)
        mine = await h.get(if_none_match='"v1"')
    assert mine.status_code == 304
    assert mine.headers["etag"] == '"v1"'


async def test_a_mismatched_304_becomes_a_request_without_conditionals() -> None:
    origin = Validating()
    async with Harness(origin.app) as h:
        await h.get()
        origin.not_modified_etag = '"other"'
        h.clock.advance(11)
        response = await h.get(if_none_match='"v1"')
        hit = await h.get()
    assert origin.seen("if-none-match") == [None, '"v1"', None]
    assert response.status_code == 200
    assert response.content == b"v1 body"
    assert is_hit(hit)


async def test_no_cache_responses_are_stored_and_revalidated_before_every_use() -> None:
    origin = Validating("no-cache")
    async with Harness(origin.app) as h:
        for _ in range(3):
            response = await h.get()
            assert response.content == b"v1 body"
    assert origin.seen("if-none-match") == [None, '"v1"', '"v1"']


async def test_stale_while_revalidate_serves_stale_and_revalidates_once_in_background() -> None:
    origin = Validating("max-age=10, stale-while-revalidate=30")
    async with Harness(origin.app) as h:
        await h.get()
        origin.version = 2
        h.clock.advance(15)
        first, second = await h.get(), await h.get()
        await h.middleware.drain()
        fresh = await h.get()
    assert first.content == second.content == b"v1 body"
    assert cache_status(first) == "fastapi-cachekit; hit; ttl=-5"
    assert first.headers["age"] == "15"
    assert origin.calls == 2  # the miss, then exactly one background revalidation
    assert origin.requests[1].method == "GET"
    assert fresh.content == b"v2 body"
    assert is_hit(fresh)


async def test_stale_while_revalidate_ends_with_its_window() -> None:
    origin = Validating("max-age=10, stale-while-revalidate=30")
    async with Harness(origin.app) as h:
        await h.get()
        h.clock.advance(41)
        response = await h.get()
    assert cache_status(response) == "fastapi-cachekit; fwd=stale; fwd-status=304; stored"


async def test_a_head_within_stale_while_revalidate_revalidates_with_a_get() -> None:
    origin = Validating("max-age=10, stale-while-revalidate=30")
    async with Harness(origin.app) as h:
        await h.get()
        h.clock.advance(15)
        head = await h.head()
        await h.middleware.drain()
    assert head.content == b""
    assert [r.method for r in origin.requests] == ["GET", "GET"]


async def test_a_failing_background_revalidation_keeps_the_stored_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    origin = Validating("max-age=10, stale-while-revalidate=30")
    async with Harness(origin.app) as h:
        await h.get()
        origin.fail = RuntimeError("database down")
        h.clock.advance(15)
        await h.get()
        await h.middleware.drain()
        again = await h.get()
    assert again.content == b"v1 body"
    assert "background revalidation" in caplog.text


@pytest.mark.parametrize("failure", [500, 503, RuntimeError("boom")])
async def test_stale_if_error_serves_stale_when_the_app_fails(failure: int | Exception) -> None:
    origin = Validating("max-age=10, stale-if-error=60")
    async with Harness(origin.app) as h:
        await h.get()
        origin.fail = failure
        h.clock.advance(30)
        response = await h.get()
    assert response.status_code == 200
    assert response.content == b"v1 body"
    assert "detail=stale-if-error" in cache_status(response)
    assert response.headers["age"] == "30"


async def test_stale_if_error_ends_with_its_window() -> None:
    origin = Validating("max-age=10, stale-if-error=60")
    async with Harness(origin.app) as h:
        await h.get()
        origin.fail = 500
        h.clock.advance(71)
        response = await h.get()
    assert (response.status_code, response.content) == (500, b"broken")
    assert cache_status(response) == "fastapi-cachekit; fwd=stale; fwd-status=500"


async def test_an_exception_outside_stale_if_error_propagates() -> None:
    origin = Validating("max-age=10")
    async with Harness(origin.app) as h:
        await h.get()
        origin.fail = RuntimeError("boom")
        h.clock.advance(11)
        with pytest.raises(RuntimeError, match="boom"):
            await h.get()


@pytest.mark.parametrize("forbidding", ["must-revalidate", "no-cache", "proxy-revalidate"])
async def test_stale_is_never_served_when_the_response_forbids_it(forbidding: str) -> None:
    origin = Validating(f"max-age=10, stale-while-revalidate=30, stale-if-error=60, {forbidding}")
    async with Harness(origin.app) as h:
        await h.get()
        h.clock.advance(15)
        await h.get()
        origin.fail = 500
        h.clock.advance(15)
        failed = await h.get()
    assert origin.seen("if-none-match")[1] == '"v1"'  # revalidated in line, not in background
    assert failed.status_code == 500


# --- request directives -------------------------------------------------------------------


async def test_respected_request_no_cache_and_pragma_force_revalidation() -> None:
    origin = Validating("max-age=60")
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        await h.get()
        forced = await h.get(cache_control="no-cache")
        pragma = await h.get(pragma="no-cache")
        plain = await h.get()
    assert cache_status(forced) == "fastapi-cachekit; fwd=request; fwd-status=304; stored"
    assert not is_hit(pragma)
    assert is_hit(plain)
    assert origin.seen("if-none-match") == [None, '"v1"', '"v1"']


async def test_respected_request_max_age_and_min_fresh() -> None:
    origin = Validating("max-age=60")
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        await h.get()
        h.clock.advance(20)
        too_old = await h.get(cache_control="max-age=10")
        h.clock.advance(20)
        too_short = await h.get(cache_control="min-fresh=50")
        fine = await h.get(cache_control="max-age=30, min-fresh=10")
    assert (is_hit(too_old), is_hit(too_short), is_hit(fine)) == (False, False, True)


async def test_respected_max_stale_serves_a_stale_response() -> None:
    origin = Validating("max-age=10")
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        await h.get()
        h.clock.advance(15)
        stale = await h.get(cache_control="max-stale=10")
    assert is_hit(stale)
    assert cache_status(stale) == "fastapi-cachekit; hit; ttl=-5"


async def test_only_if_cached_gets_a_504_when_nothing_fresh_is_stored() -> None:
    origin = Validating("max-age=10")
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        miss = await h.get(cache_control="only-if-cached")
        await h.get()
        hit = await h.get(cache_control="only-if-cached")
        h.clock.advance(11)
        stale = await h.get(cache_control="only-if-cached")
    assert (miss.status_code, hit.status_code, stale.status_code) == (504, 200, 504)
    assert cache_status(miss) == "fastapi-cachekit; detail=only-if-cached"
    assert origin.calls == 1


async def test_request_directives_are_ignored_by_default() -> None:
    origin = Validating("max-age=10")
    async with Harness(origin.app) as h:
        response = await h.get(cache_control="only-if-cached")
    assert response.status_code == 200


async def test_respected_request_no_store_is_not_stored_but_served() -> None:
    origin = Validating("max-age=60")
    async with Harness(origin.app, respect_request_cache_control=True) as h:
        await h.get(cache_control="no-store")
        await h.get()
        served = await h.get(cache_control="no-store")
    assert origin.calls == 2
    assert is_hit(served)
