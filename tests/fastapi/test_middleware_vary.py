"""CacheMiddleware: Vary (RFC 9111 §4.1). Each combination of the named request fields'
normalised values is its own stored variant, so clients that differ in them all get hits."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.fastapi.http import request_key
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from fastapi_cachekit.fastapi.middleware.store import (
    decode_marker,
    encode_marker,
    marker_variants,
    variant_key,
)
from fastapi_cachekit.keys import MAX_KEY_LENGTH

from .middleware_support import Harness, Origin, cache_status, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")


class Negotiating(Origin):
    """An origin answering in the request's language (and encoding, when asked to vary)."""

    def __init__(self, vary: str = "Accept-Language") -> None:
        super().__init__()
        self.vary = vary

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        language = request.headers.get("accept-language", "none")
        headers = {"cache-control": "max-age=60", "vary": self.vary}
        return Response(f"hello in {language}".encode(), headers=headers)


async def test_clients_with_different_languages_each_get_their_variant_from_the_cache() -> None:
    origin = Negotiating()
    async with Harness(origin.app) as h:
        for language in ("en", "fr", "de"):
            await h.get(accept_language=language)
        hits = {lang: await h.get(accept_language=lang) for lang in ("en", "fr", "de")}
    assert origin.calls == 3
    for language, response in hits.items():
        assert is_hit(response)
        assert response.content == f"hello in {language}".encode()


async def test_the_primary_key_holds_the_vary_field_names() -> None:
    origin = Negotiating("Accept-Language, Accept-Encoding")
    async with Harness(origin.app) as h:
        await h.get(accept_language="en")
        raw = await h.cache.get_raw(request_key("http", "testserver", "/", b""), "http")
    assert raw is not None
    assert decode_marker(raw) == (b"accept-language", b"accept-encoding")


async def test_an_absent_field_is_a_variant_of_its_own() -> None:
    origin = Negotiating()
    async with Harness(origin.app) as h:
        await h.get()
        with_language = await h.get(accept_language="en")
        without = await h.get()
    assert not is_hit(with_language)
    assert cache_status(with_language) == "fastapi-cachekit; fwd=vary-miss; stored"
    assert is_hit(without)
    assert without.content == b"hello in none"


async def test_normalised_values_share_a_variant() -> None:
    origin = Negotiating("Accept-Encoding")
    async with Harness(origin.app) as h:
        await h.get(accept_encoding="gzip,  br")
        same = await h.get(accept_encoding="GZIP, br")
        other = await h.get(accept_encoding="br")
    assert is_hit(same)
    assert not is_hit(other)


async def test_conditional_requests_work_per_variant() -> None:
    origin = Negotiating()
    async with Harness(origin.app) as h:
        english = await h.get(accept_language="en")
        await h.get(accept_language="fr")
        mine = await h.get(accept_language="en", if_none_match=english.headers["etag"])
        theirs = await h.get(accept_language="fr", if_none_match=english.headers["etag"])
    assert (mine.status_code, theirs.status_code) == (304, 200)


async def test_a_response_that_stops_varying_replaces_the_variants() -> None:
    origin = Negotiating()
    async with Harness(origin.app) as h:
        await h.get(accept_language="en")
        h.clock.advance(61)
        origin.vary = "X-Nothing-Sent"
        await h.get(accept_language="fr")
        other = await h.get(accept_language="de")
    assert is_hit(other)
    assert other.content == b"hello in fr"


async def test_head_is_answered_from_the_stored_variant() -> None:
    origin = Negotiating()
    async with Harness(origin.app) as h:
        await h.get(accept_language="en")
        head = await h.head(accept_language="en")
        other = await h.head(accept_language="fr")
    assert is_hit(head)
    assert not is_hit(other)


def test_variant_keys_are_deterministic_distinct_and_bounded() -> None:
    en = ((b"accept-language", b"en"),)
    assert variant_key("k", en) == variant_key("k", en)
    assert variant_key("k", en) != variant_key("k", ((b"accept-language", b"fr"),))
    assert variant_key("k", en) != variant_key("k", ((b"accept-language", None),))
    assert variant_key("k", en) != variant_key("j", en)
    long_key = "k" * MAX_KEY_LENGTH
    assert len(variant_key(long_key, en)) <= MAX_KEY_LENGTH
    assert variant_key(long_key, en) != variant_key("k" * (MAX_KEY_LENGTH - 1), en)


def test_vary_markers_round_trip_and_are_told_from_other_bytes() -> None:
    names = (b"accept-language", b"accept-encoding")
    assert decode_marker(encode_marker(names)) == names
    assert decode_marker(b"\xffCK\x01 a stored response") is None
    assert decode_marker(encode_marker(())) is None


async def test_variants_per_url_are_capped_least_recently_stored_dropped() -> None:
    origin = Negotiating()
    languages = [f"x-{n}" for n in range(40)]
    primary = request_key("http", "testserver", "/", b"")
    async with Harness(origin.app, max_variants=4) as h:
        for language in languages:
            await h.get(accept_language=language)
        marker = await h.cache.get_raw(primary, "http")
        stored = [
            await h.cache.exists(
                variant_key(primary, ((b"accept-language", lang.encode()),)), "http"
            )
            for lang in languages
        ]
        last = [is_hit(await h.get(accept_language=lang)) for lang in languages[-4:]]
    assert stored == [False] * 36 + [True] * 4
    assert len(marker_variants(marker)) == 4
    assert last == [True] * 4


async def test_storing_a_variant_again_makes_it_the_most_recent() -> None:
    origin = Negotiating()
    async with Harness(origin.app, max_variants=2) as h:
        await h.get(accept_language="a")
        h.clock.advance(30)
        await h.get(accept_language="b")
        h.clock.advance(31)  # "a" is stale, "b" fresh: "a" is stored again, now the most recent
        await h.get(accept_language="a")
        await h.get(accept_language="c")  # drops "b", the least recently stored
        answers = {lang: is_hit(await h.get(accept_language=lang)) for lang in "ab"}
    assert answers == {"a": True, "b": False}


def test_max_variants_must_be_a_positive_int() -> None:
    for bad in (0, -1, 1.5, True, "32"):
        with pytest.raises(ConfigurationError, match="max_variants"):
            CacheMiddleware(Origin().app, max_variants=bad)
