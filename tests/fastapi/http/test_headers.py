"""Field lists, Vary selection and field-value normalisation (RFC 9111 §4.1, RFC 9110 §5.3,
§5.6.1): `http/headers.py`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from fastapi_cachekit.fastapi.http import (
    Action,
    combined_value,
    normalise_field_value,
    preference_list,
    split_list,
    vary_field_names,
    vary_matches,
    vary_values,
)
from tests.fastapi.middleware_support import Harness, Origin, cache_status, is_hit

from .support import hdrs, lookup, stored


def test_split_list_honours_quotes_and_escapes() -> None:
    assert split_list('a, b="x,y", c="q\\"," , , d') == ["a", 'b="x,y"', 'c="q\\","', "d"]


def test_header_values_and_combined_value() -> None:
    headers = [(b"accept", b"a"), (b"x", b"1"), (b"accept", b"b")]
    assert combined_value(headers, b"accept") == b"a, b"
    assert combined_value(headers, b"x") == b"1"
    assert combined_value(headers, b"missing") is None


def test_vary_field_names_lowercased_unique_in_order() -> None:
    headers = [(b"vary", b"Accept-Encoding, accept"), (b"vary", b"ACCEPT-ENCODING, Origin")]
    assert vary_field_names(headers) == (b"accept-encoding", b"accept", b"origin")


def test_vary_normalisation_folds_whitespace_and_combines_lines() -> None:
    assert normalise_field_value(b"accept", [b"text/html ,  application/json"]) == (
        b"application/json,text/html"
    )
    assert normalise_field_value(b"accept", [b"text/html", b"application/json"]) == (
        b"application/json,text/html"
    )
    assert normalise_field_value(b"x-a", [b"  a \t b  "]) == b"a b"
    assert normalise_field_value(b"x-a", [b"Mixed"]) == b"Mixed"
    assert normalise_field_value(b"accept-encoding", [b"GZIP, Br"]) == b"br,gzip"
    assert normalise_field_value(b"x-a", []) is None


def test_vary_absent_field_only_matches_absent() -> None:
    stored_values = vary_values([b"x-a"], [])
    assert stored_values == ((b"x-a", None),)
    assert vary_matches(stored_values, [])
    assert not vary_matches(stored_values, [(b"x-a", b"")])
    assert not vary_matches(vary_values([b"x-a"], [(b"x-a", b"")]), [])


def test_vary_selects_the_stored_variant() -> None:
    entry = stored(
        hdrs(cache_control="max-age=60", vary="Accept-Encoding"),
        request=hdrs(accept_encoding="gzip, br"),
    )
    assert lookup(entry, hdrs(accept_encoding="gzip,br")).action is Action.SERVE
    assert lookup(entry, [(b"accept-encoding", b"gzip"), (b"accept-encoding", b"br")]).action is (
        Action.SERVE
    )
    miss = lookup(entry, hdrs(accept_encoding="identity"))
    assert (miss.action, miss.fwd) == (Action.FORWARD, "vary-miss")
    assert lookup(entry).action is Action.FORWARD


@given(st.lists(st.binary(max_size=15).filter(lambda v: b"\0" not in v), max_size=3))
def test_vary_normalisation_is_idempotent(values: list[bytes]) -> None:
    once = normalise_field_value(b"accept", values)
    assert once is None or normalise_field_value(b"accept", [once]) == once


# The negotiation fields compare in a normal form (RFC 9111 §4.1; RFC 9110 §12.4.2, §12.5):
# requests that state the same preferences in another order, case, spacing or weight spelling
# share one stored variant, so the variant count stays small.

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
    assert vary_matches(vary_values([name], [(name, one)]), [(name, other)])


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
