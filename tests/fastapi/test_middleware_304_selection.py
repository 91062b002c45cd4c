"""A 304 whose validator is not that of the stored response revalidated (RFC 9111 §4.3.4):
the stored response it names (another variant of the URL) is updated and served; only when
it names none is the request sent again without conditionals."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.fastapi.http import CachePolicy, StoredResponse, decide_storage
from fastapi_cachekit.fastapi.http import select_updated as select

from .middleware_support import Harness, Origin, cache_status, is_hit

T0 = 1_700_000_000.0


def entry(etag: str = "", last_modified: str = "") -> StoredResponse:
    headers = [(b"cache-control", b"max-age=10")]
    headers += [(b"etag", etag.encode())] if etag else []
    headers += [(b"last-modified", last_modified.encode())] if last_modified else []
    plan = decide_storage(
        "GET", [], 200, headers, policy=CachePolicy(), request_time=T0, response_time=T0
    ).plan
    assert plan is not None
    stored = plan.entry(etag.encode() or b"body")
    assert stored is not None
    return stored


def test_rfc9111_4_3_4_a_strong_etag_selects_the_response_with_that_etag() -> None:
    a, b = entry('"a"'), entry('"b"')
    assert select([a, b], [(b"ETag", b'"b"')]) is b
    assert select([a, b], [(b"etag", b'W/"b"')]) is b  # a weak one matches weakly
    assert select([a, b], [(b"etag", b'"c"')]) is None


def test_rfc9111_4_3_4_a_weak_stored_etag_is_not_selected_by_a_strong_one() -> None:
    assert select([entry('W/"a"')], [(b"etag", b'"a"')]) is None


def test_rfc9111_4_3_4_last_modified_selects_only_without_an_etag() -> None:
    old = entry(last_modified="Tue, 14 Nov 2023 22:00:00 GMT")
    assert select([old], [(b"last-modified", b"Tue, 14 Nov 2023 22:00:00 GMT")]) is old
    assert (
        select([old], [(b"etag", b'"x"'), (b"last-modified", b"Tue, 14 Nov 2023 22:00:00 GMT")])
        is None
    )


def test_rfc9111_4_3_4_a_304_without_validators_selects_nothing_else() -> None:
    assert select([entry('"a"')], []) is None


class Languages(Origin):
    """Varies on Accept-Language; `chosen` maps a language to the representation served for
    it, whose ETag is its name. A conditional request gets a 304 naming the representation
    the language maps to now."""

    def __init__(self) -> None:
        super().__init__()
        self.chosen = {"en": "english", "en-us": "american"}

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        name = self.chosen[request.headers["accept-language"]]
        headers = {"cache-control": "max-age=10", "vary": "Accept-Language", "etag": f'"{name}"'}
        if request.headers.get("if-none-match"):
            return Response(status_code=304, headers=headers)
        return Response(name.encode(), headers=headers)


@pytest.mark.usefixtures("http_backend")
async def test_rfc9111_4_3_4_a_304_naming_another_variant_updates_and_serves_it() -> None:
    origin = Languages()
    async with Harness(origin.app) as h:
        await h.get(accept_language="en")
        await h.get(accept_language="en-us")
        h.clock.advance(11)
        origin.chosen["en-us"] = "english"  # en-US readers now get the English page
        revalidated = await h.get(accept_language="en-us")
        hit = await h.get(accept_language="en-us")
    assert revalidated.content == b"english"
    assert revalidated.headers["etag"] == '"english"'
    assert cache_status(revalidated) == "fastapi-cachekit; fwd=stale; fwd-status=304; stored"
    assert origin.seen("if-none-match") == [None, None, '"american"']  # no full request
    assert is_hit(hit)
    assert hit.content == b"english"


@pytest.mark.usefixtures("http_backend")
async def test_rfc9111_4_3_4_a_304_naming_no_stored_response_gets_a_full_request() -> None:
    origin = Languages()
    async with Harness(origin.app) as h:
        await h.get(accept_language="en-us")
        h.clock.advance(11)
        origin.chosen["en-us"] = "english"  # a representation the cache never stored
        response = await h.get(accept_language="en-us")
    assert origin.seen("if-none-match") == [None, '"american"', None]
    assert response.content == b"english"
