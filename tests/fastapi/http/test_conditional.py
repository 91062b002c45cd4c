"""ETags and conditional requests answered from the cache (RFC 9110 §8.8.3, §13, §15.4.5):
`http/conditional.py`."""

from __future__ import annotations

import hashlib

import pytest

from fastapi_cachekit.fastapi.http import (
    CacheStatus,
    format_http_date,
    generate_etag,
    hit_response,
    not_modified,
    not_modified_headers,
    parse_entity_tags,
    strong_match,
    weak_match,
)

from .support import EXPLICIT, T0, T0_HTTP, hdrs, lookup, names, stored, validated_entry


def test_generated_etag_is_strong_quoted_and_deterministic() -> None:
    tag = generate_etag(b"hello")
    assert tag == b'"' + hashlib.blake2b(b"hello", digest_size=16).hexdigest().encode() + b'"'
    assert tag == b'"46fb7408d4f285228f4af516ea25851b"'  # fixed: same in every process
    assert generate_etag(b"hello!") != tag


def test_stored_response_without_etag_gets_a_generated_one() -> None:
    entry = stored(EXPLICIT, b"hello")
    assert entry.etag == generate_etag(b"hello")
    assert entry.etag_generated
    assert entry.origin_etag == b""
    assert (b"etag", entry.etag) in entry.headers
    assert not entry.has_validators


def test_parse_entity_tags() -> None:
    assert parse_entity_tags([b'"a", W/"b" ,"c,d"', b'"e"']) == (
        False,
        (b'"a"', b'W/"b"', b'"c,d"', b'"e"'),
    )
    assert parse_entity_tags([b"*"]) == (True, ())
    assert parse_entity_tags([b'junk, "ok", W/bad, "unterminated']) == (False, (b'"ok"',))
    assert parse_entity_tags([]) == (False, ())


@pytest.mark.parametrize(
    ("a", "b", "strong", "weak"),
    [
        (b'W/"1"', b'W/"1"', False, True),
        (b'W/"1"', b'W/"2"', False, False),
        (b'W/"1"', b'"1"', False, True),
        (b'"1"', b'"1"', True, True),
    ],
)
def test_weak_and_strong_comparison_rfc_9110_table(
    a: bytes, b: bytes, strong: bool, weak: bool
) -> None:
    assert strong_match(a, b) is strong
    assert weak_match(a, b) is weak


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b'"v1"', True),
        (b'W/"v1"', True),
        (b'"v0", "v1"', True),
        (b"*", True),
        (b'"v2"', False),
        (b"v1", False),
    ],
)
def test_if_none_match(value: bytes, expected: bool) -> None:
    assert not_modified(validated_entry(), [value], []) is expected


def test_if_modified_since_only_without_if_none_match() -> None:
    entry = validated_entry()
    since = format_http_date(T0 - 100)
    earlier = format_http_date(T0 - 101)
    assert not_modified(entry, [], [since])
    assert not not_modified(entry, [], [earlier])
    assert not not_modified(entry, [b'"other"'], [since])  # If-None-Match takes precedence


@pytest.mark.parametrize("values", [[b"yesterday"], [T0_HTTP, T0_HTTP], []])
def test_invalid_if_modified_since_is_ignored(values: list[bytes]) -> None:
    assert not not_modified(validated_entry(), [], values)


def test_if_modified_since_uses_date_without_last_modified() -> None:
    entry = stored(hdrs(cache_control="max-age=60", date=T0_HTTP.decode()))
    assert not_modified(entry, [], [T0_HTTP])
    assert not not_modified(entry, [], [format_http_date(T0 - 1)])


def test_conditionals_only_apply_to_stored_200() -> None:
    entry = stored(hdrs(cache_control="max-age=60", etag='"v1"'), status=404)
    assert not not_modified(entry, [b'"v1"'], [])
    assert not lookup(entry, hdrs(if_none_match='"v1"')).not_modified


def test_not_modified_headers_are_those_a_200_would_carry_minus_content() -> None:
    kept = names(not_modified_headers(validated_entry()))
    assert sorted(kept) == sorted(
        [b"cache-control", b"etag", b"content-location", b"expires", b"vary", b"date"]
    )


def test_not_modified_headers_keep_last_modified_only_without_etag() -> None:
    entry = validated_entry()._replace(etag=b"")
    assert b"last-modified" in names(not_modified_headers(entry))


def test_fresh_hit_with_matching_client_conditional_gives_304() -> None:
    entry = validated_entry()
    decision = lookup(entry, hdrs(if_none_match='W/"v1"'), now=T0 + 5)
    assert decision.not_modified
    status, headers, body = hit_response(entry, decision, CacheStatus().hit(decision.ttl))
    assert (status, body) == (304, b"")
    assert b"content-type" not in names(headers)
    assert b"content-length" not in names(headers)
    assert headers[-2:] == [(b"age", b"5"), (b"cache-status", b"fastapi-cachekit; hit; ttl=55")]
