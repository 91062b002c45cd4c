"""Vary normalisation of the negotiation fields (RFC 9111 §4.1; RFC 9110 §12.4.2, §12.5):
requests that state the same preferences in another order, case, spacing or weight spelling
share one stored variant, so the variant count stays small."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.fastapi.http import normalise_field_value, preference_list, vary_matches
from fastapi_cachekit.fastapi.http import vary_values as values_of

from .middleware_support import Harness, Origin, cache_status, is_hit

EQUIVALENT = [
    (b"accept-language", b"en, de", b"de, en"),
    (b"accept-language", b"en-US,en;q=0.9", b"EN-us , en; q=0.900"),
    (b"accept-language", b"de;q=1.0, fr;q=0.50", b"fr;q=0.5,de"),
    (b"accept-encoding", b"gzip, deflate, br", b"br,GZIP,\tdeflate"),
    (b"accept-encoding", b"gzip, gzip;q=0.1", b"gzip"),
    (b"accept", b"text/html, application/json;q=0.8", b"Application/JSON; Q=0.8,TEXT/html"),
]
DIFFERENT = [
    (b"accept-language", b"en;q=0.9, de", b"en, de;q=0.9"),  # the weights say otherwise
    (b"accept-language", b"en", b"en, de"),
    (b"accept-encoding", b"gzip;q=0", b"gzip"),  # q=0: not acceptable
    (b"accept", b"text/html;level=1", b"text/html"),
    (b"accept-language", b"en;q=zz", b"en"),  # not a qvalue: kept apart, never merged
]


@pytest.mark.parametrize(("name", "one", "other"), EQUIVALENT)
def test_rfc9111_4_1_equivalent_negotiation_values_match(
    name: bytes, one: bytes, other: bytes
) -> None:
    assert normalise_field_value(name, [one]) == normalise_field_value(name, [other])
    assert vary_matches(values_of([name], [(name, one)]), [(name, other)])


@pytest.mark.parametrize(("name", "one", "other"), DIFFERENT)
def test_rfc9111_4_1_different_preferences_stay_apart(
    name: bytes, one: bytes, other: bytes
) -> None:
    assert normalise_field_value(name, [one]) != normalise_field_value(name, [other])


def test_rfc9110_12_4_2_weights_order_then_names() -> None:
    assert preference_list(b"de;q=0.5, fr, en;q=0.9, it;q=0.5") == b"fr,en;q=0.9,de;q=0.5,it;q=0.5"


def test_rfc9111_4_1_other_fields_keep_their_order_and_case() -> None:
    assert normalise_field_value(b"x-tenant", [b"B, a"]) == b"B,a"


@given(st.binary(max_size=40))
def test_preference_list_is_idempotent(value: bytes) -> None:
    once = preference_list(value)
    assert preference_list(once) == once


class Negotiating(Origin):
    """An origin whose response varies on Accept-Language, with the value it saw."""

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        headers = {"cache-control": "max-age=60", "vary": "Accept-Language"}
        return Response(request.headers.get("accept-language", "-"), headers=headers)


@pytest.mark.usefixtures("http_backend")
async def test_rfc9111_4_1_equivalent_requests_share_one_variant() -> None:
    origin = Negotiating()
    async with Harness(origin.app) as h:
        first = await h.get(accept_language="en, de;q=0.5")
        second = await h.get(accept_language="DE;q=0.50,en")
        third = await h.get(accept_language="en,de;q=0.500")
        other = await h.get(accept_language="de, en;q=0.5")
    assert "stored" in cache_status(first)
    assert is_hit(second)
    assert is_hit(third)
    assert second.content == b"en, de;q=0.5"
    assert not is_hit(other)
    assert origin.calls == 2
