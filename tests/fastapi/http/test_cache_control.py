"""Cache-Control parsing (RFC 9111 §5.2, §4.2.1, §1.2.2) and Pragma (§5.4):
`http/cache_control.py`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cachekit.fastapi.http import (
    MAX_DELTA_SECONDS,
    NO_DIRECTIVES,
    CacheControl,
    parse_cache_control,
    request_cache_control,
)

from .support import cc, hdrs


def test_cc_directive_names_are_case_insensitive() -> None:
    parsed = cc("Max-Age=60, NO-STORE, Public, S-MaxAge=5")
    assert parsed.max_age == 60
    assert parsed.s_maxage == 5
    assert parsed.no_store
    assert parsed.public


def test_cc_quoted_and_unquoted_values() -> None:
    assert cc('max-age="30"').max_age == 30
    assert cc("max-age=30").max_age == 30
    assert cc("max-age = 30").max_age == 30


def test_cc_several_lines_and_comma_lists() -> None:
    parsed = cc(
        "public, max-age=10", "must-revalidate", "stale-if-error=5, stale-while-revalidate=7"
    )
    assert parsed.public
    assert parsed.max_age == 10
    assert parsed.must_revalidate
    assert parsed.stale_if_error == 5
    assert parsed.stale_while_revalidate == 7


def test_cc_empty_members_are_ignored() -> None:
    assert cc(",, max-age=3 ,,").max_age == 3
    assert cc("") == NO_DIRECTIVES
    assert parse_cache_control([]) == NO_DIRECTIVES


def test_cc_comma_inside_quoted_field_list_does_not_split() -> None:
    parsed = cc('no-cache="Set-Cookie, X-Token", max-age=5')
    assert not parsed.no_cache
    assert parsed.no_cache_fields == {b"set-cookie", b"x-token"}
    assert parsed.max_age == 5


def test_cc_qualified_private_holds_lowercased_field_names() -> None:
    parsed = cc('private="Set-Cookie"', "private=X-User")
    assert not parsed.private
    assert parsed.private_fields == {b"set-cookie", b"x-user"}


def test_cc_unqualified_form_wins_over_qualified() -> None:
    parsed = cc('no-cache="x-a", no-cache, private="x-b", private')
    assert parsed.no_cache
    assert parsed.no_cache_fields == frozenset()
    assert parsed.private
    assert parsed.private_fields == frozenset()


def test_cc_empty_field_list_counts_as_unqualified() -> None:
    assert cc('no-cache=""').no_cache
    assert cc('private=""').private


def test_cc_duplicate_max_age_keeps_smallest() -> None:
    assert cc("max-age=60, max-age=10", "max-age=30").max_age == 10
    assert cc("s-maxage=9, s-maxage=90").s_maxage == 9
    assert cc("stale-while-revalidate=9, stale-while-revalidate=3").stale_while_revalidate == 3


def test_cc_duplicate_min_fresh_keeps_largest() -> None:
    assert cc("min-fresh=5, min-fresh=50").min_fresh == 50


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", '""', "+5", "0x10", "\uff11\uff12"])
def test_cc_invalid_max_age_means_stale(value: str) -> None:
    assert cc(f"max-age={value}").max_age == 0
    assert cc(f"s-maxage={value}").s_maxage == 0
    assert cc(f"max-age=60, max-age={value}").max_age == 0


def test_cc_max_age_without_value_means_stale() -> None:
    assert cc("max-age").max_age == 0


def test_cc_invalid_stale_extensions_allow_no_staleness() -> None:
    parsed = cc("stale-while-revalidate=soon, stale-if-error=-3")
    assert parsed.stale_while_revalidate == 0
    assert parsed.stale_if_error == 0


def test_cc_delta_seconds_capped_at_2_31() -> None:
    assert cc("max-age=99999999999999999999").max_age == MAX_DELTA_SECONDS == 2**31


def test_cc_max_stale_without_value_accepts_any_staleness() -> None:
    assert cc("max-stale").max_stale == MAX_DELTA_SECONDS
    assert cc("max-stale=30").max_stale == 30
    assert cc("max-stale=bad").max_stale == 0


def test_cc_invalid_min_fresh_is_most_restrictive() -> None:
    assert cc("min-fresh=bad").min_fresh == MAX_DELTA_SECONDS


def test_cc_private_beats_public() -> None:
    parsed = cc("public, private")
    assert parsed.private
    assert not parsed.public


def test_cc_boolean_directives() -> None:
    parsed = cc(
        "no-transform, proxy-revalidate, must-understand, only-if-cached, immutable, no-store"
    )
    assert parsed.no_transform
    assert parsed.proxy_revalidate
    assert parsed.must_understand
    assert parsed.only_if_cached
    assert parsed.immutable
    assert parsed.no_store
    assert cc("no-store=1").no_store  # an argument where none is expected: still present


def test_cc_unknown_directives_ignored() -> None:
    assert cc('community="UCI", x-ext=1, foo') == NO_DIRECTIVES
    assert cc("foo, max-age=4").max_age == 4


def test_cc_explicit_freshness_flag() -> None:
    assert cc("max-age=1").has_explicit_freshness
    assert cc("s-maxage=1").has_explicit_freshness
    assert not cc("public").has_explicit_freshness


def test_pragma_no_cache_only_without_cache_control() -> None:
    assert request_cache_control(hdrs(pragma="no-cache")).no_cache
    assert request_cache_control(hdrs(pragma="x, No-Cache")).no_cache
    assert not request_cache_control(hdrs(pragma="no-cache", cache_control="max-age=5")).no_cache
    assert request_cache_control(hdrs(pragma="other")) == NO_DIRECTIVES
    assert request_cache_control([]) == NO_DIRECTIVES


_DIRECTIVES = st.sampled_from(
    ["max-age", "s-maxage", "stale-while-revalidate", "stale-if-error", "min-fresh"]
)


@given(st.lists(st.tuples(_DIRECTIVES, st.integers(0, 10**6), st.booleans()), min_size=1))
def test_cc_parse_property_numeric_directives(items: list[tuple[str, int, bool]]) -> None:
    """Rendering directives (quoted or not, in any case) and parsing gives the conservative
    value of each: the smallest, or the largest for min-fresh."""
    text = ", ".join(
        f'{name.upper()}="{value}"' if quoted else f"{name}={value}"
        for name, value, quoted in items
    )
    parsed = parse_cache_control([text.encode()])
    for name in {name for name, _, _ in items}:
        values = [value for n, value, _ in items if n == name]
        expected = max(values) if name == "min-fresh" else min(values)
        assert getattr(parsed, name.replace("-", "_")) == expected


@given(st.binary(max_size=200))
def test_cc_parser_never_raises(raw: bytes) -> None:
    assert isinstance(parse_cache_control([raw]), CacheControl)
