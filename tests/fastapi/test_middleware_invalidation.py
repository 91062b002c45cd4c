"""CacheMiddleware: invalidation by unsafe methods (RFC 9111 §4.4), with the default key and
with a custom key_func (through the URL -> keys index)."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.fastapi.http import request_key

from .middleware_support import Harness, Origin, cache_status, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")


class Writable(Origin):
    """GET answers cacheable pages; unsafe methods answer `write_status` and `write_headers`."""

    def __init__(self) -> None:
        super().__init__()
        self.write_status = 200
        self.write_headers: dict[str, str] = {}

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        if request.method in ("GET", "HEAD"):
            headers = {"cache-control": "max-age=60", "vary": "Accept-Language"}
            return Response(f"page {self.calls}".encode(), headers=headers)
        return Response(b"done", status_code=self.write_status, headers=self.write_headers)


async def cached(h: Harness, *paths: str) -> None:
    for path in paths:
        await h.get(path, accept_language="en")
        await h.get(path, accept_language="fr")


async def still_cached(h: Harness, path: str) -> bool:
    responses = [await h.get(path, accept_language=lang) for lang in ("en", "fr")]
    assert is_hit(responses[0]) == is_hit(responses[1])
    return is_hit(responses[0])


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_successful_unsafe_request_removes_every_variant_of_its_target(
    method: str,
) -> None:
    origin = Writable()
    async with Harness(origin.app) as h:
        await cached(h, "/items/1", "/items/2")
        response = await h.request(method, "/items/1")
        assert "cache-status" not in response.headers
        assert not await still_cached(h, "/items/1")
        assert await still_cached(h, "/items/2")


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_an_error_response_invalidates_nothing(status: int) -> None:
    origin = Writable()
    origin.write_status = status
    async with Harness(origin.app) as h:
        await cached(h, "/items/1")
        await h.request("POST", "/items/1")
        assert await still_cached(h, "/items/1")


async def test_safe_methods_invalidate_nothing() -> None:
    origin = Writable()
    async with Harness(origin.app) as h:
        await cached(h, "/items/1")
        options = await h.request("OPTIONS", "/items/1")
        assert options.content == b"done"
        assert await still_cached(h, "/items/1")


async def test_same_origin_location_and_content_location_are_invalidated() -> None:
    origin = Writable()
    origin.write_status = 201
    origin.write_headers = {"location": "/items/2", "content-location": "http://testserver/c?x=1"}
    async with Harness(origin.app) as h:
        await cached(h, "/items", "/items/2", "/c?x=1", "/items/3")
        await h.request("POST", "/items")
        assert not await still_cached(h, "/items")
        assert not await still_cached(h, "/items/2")
        assert not await still_cached(h, "/c?x=1")
        assert await still_cached(h, "/items/3")


async def test_locations_on_another_origin_are_not_invalidated() -> None:
    origin = Writable()
    origin.write_headers = {"location": "http://elsewhere.example/items/2"}
    async with Harness(origin.app) as h:
        await cached(h, "/items/2")
        await h.request("POST", "/items/1")
        assert await still_cached(h, "/items/2")


async def test_the_query_is_part_of_the_invalidated_url() -> None:
    origin = Writable()
    async with Harness(origin.app) as h:
        await cached(h, "/search?q=a&page=1", "/search?q=b")
        await h.request("POST", "/search?page=1&q=a")
        assert not await still_cached(h, "/search?q=a&page=1")
        assert await still_cached(h, "/search?q=b")


async def test_invalidation_works_with_a_key_func_through_the_url_index() -> None:
    origin = Writable()

    def by_path(request: Request) -> str:
        return f"page:{request.url.path}"  # the query (tracking parameters) is ignored

    async with Harness(origin.app, key_func=by_path) as h:
        await cached(h, "/items/1?utm=mail", "/items/2")
        assert await still_cached(h, "/items/1")  # one key, reached from two URLs
        await h.request("PUT", "/items/1")  # the URL that did not store the response
        assert not await still_cached(h, "/items/1?utm=mail")
        assert await still_cached(h, "/items/2")


async def test_key_func_invalidation_uses_the_index_for_header_dependent_keys() -> None:
    origin = Writable()

    def by_tenant(request: Request) -> str:
        return f"{request.headers.get('x-tenant', '-')}:{request.url.path}"

    async with Harness(origin.app, key_func=by_tenant) as h:
        await h.get("/items/1", x_tenant="a")
        await h.get("/items/1", x_tenant="b")
        await h.request("POST", "/items/1", x_tenant="a")  # also drops tenant b's copy
        responses = [await h.get("/items/1", x_tenant=tenant) for tenant in "ab"]
    assert not any(is_hit(response) for response in responses)


async def test_key_func_invalidation_survives_a_lost_index_entry() -> None:
    # Two first stores for one URL at the same instant can each write the index without the
    # other's key; each record's own URL tag still makes the URL's invalidation find it.
    origin = Writable()

    def by_tenant(request: Request) -> str:
        return f"{request.headers.get('x-tenant', '-')}:{request.url.path}"

    async with Harness(origin.app, key_func=by_tenant) as h:
        await h.get("/items/1", x_tenant="a")
        index_key = "cachekit-urlidx:" + request_key("http", "testserver", "/items/1", b"")
        lost = await h.cache.get_raw(index_key, "http")  # the index before b's store
        await h.get("/items/1", x_tenant="b")
        await h.cache.set_raw(index_key, lost or b"", 60, "http")  # b's entry lost
        assert is_hit(await h.get("/items/1", x_tenant="b"))
        await h.request("POST", "/items/1", x_tenant="a")
        responses = [await h.get("/items/1", x_tenant=tenant) for tenant in "ab"]
    assert not any(is_hit(response) for response in responses)


async def test_key_func_invalidation_follows_location_too() -> None:
    origin = Writable()
    origin.write_headers = {"location": "/items/9"}

    def by_path(request: Request) -> str:
        return f"page:{request.url.path}"

    async with Harness(origin.app, key_func=by_path) as h:
        await cached(h, "/items/9")
        await h.request("POST", "/items")
        assert not await still_cached(h, "/items/9")


async def test_unsafe_requests_pass_through_untouched() -> None:
    origin = Writable()
    origin.write_headers = {"x-a": "1"}
    async with Harness(origin.app) as h:
        response = await h.request("DELETE", "/items/1")
    assert list(response.headers.multi_items()) == [("x-a", "1"), ("content-length", "4")]
    assert cache_status(response) == ""


async def test_a_garbled_url_index_record_does_not_fail_the_write() -> None:
    origin = Writable()

    def by_path(request: Request) -> str:
        return f"page:{request.url.path}"

    async with Harness(origin.app, key_func=by_path) as h:
        await cached(h, "/items/1")
        index_key = "cachekit-urlidx:" + request_key("http", "testserver", "/items/1", b"")
        await h.cache.set_raw(index_key, b"\xff\xfe not an index", 60, "http")
        response = await h.request("POST", "/items/1")
        assert response.status_code == 200
        assert not await still_cached(h, "/items/1")  # key_func on the target still works
