"""Revalidation outcomes (RFC 9111 §3.2, §4.3.3, §4.3.4): `http/validation.py`."""

from __future__ import annotations

from fastapi_cachekit.fastapi.http import (
    Action,
    Headers,
    LookupDecision,
    Revalidation,
    StoredResponse,
    decide_revalidation,
    decode_entry,
    encode_entry,
    format_http_date,
    generate_etag,
    merge_headers,
    validators_agree,
)

from .support import DEFAULT, T0, T0_HTTP, hdrs, lookup, names, stored, validated_entry


def test_304_freshens_the_stored_response() -> None:
    entry = validated_entry()
    result = decide_revalidation(
        entry,
        304,
        hdrs(
            cache_control="max-age=120",
            etag='"v1"',
            x_new="1",
            date=format_http_date(T0 + 100).decode(),
        ),
        [],
        policy=DEFAULT,
        request_time=T0 + 100,
        response_time=T0 + 100,
    )
    assert result.outcome is Revalidation.UPDATED
    assert result.reason == "freshened"
    assert result.entry is not None
    assert result.plan is not None
    fresh = result.entry
    assert fresh.body == entry.body
    assert fresh.lifetime == 120
    assert fresh.response_time == T0 + 100
    assert (b"cache-control", b"max-age=120") in fresh.headers
    assert (b"x-new", b"1") in fresh.headers
    assert (b"content-type", b"text/plain") in fresh.headers
    assert result.serve == LookupDecision(Action.SERVE, "revalidated", 0, 120)
    assert decode_entry(encode_entry(fresh)) == fresh


def test_304_cannot_change_the_headers_describing_the_stored_body() -> None:
    entry = validated_entry()
    update = hdrs(
        etag='"v1"',
        content_type="application/evil",
        content_length="99999",
        content_encoding="gzip",
        transfer_encoding="chunked",
    )
    fresh, plan = _freshened(entry, update)
    assert (b"content-type", b"text/plain") in fresh.headers
    assert (b"content-length", b"4") in fresh.headers
    assert b"content-encoding" not in names(fresh.headers)
    assert b"transfer-encoding" not in names(fresh.headers)
    assert plan is not None


def _freshened(entry: StoredResponse, update: Headers) -> tuple[StoredResponse, object]:
    result = decide_revalidation(
        entry, 304, update, [], policy=DEFAULT, request_time=T0 + 100, response_time=T0 + 100
    )
    assert result.outcome is Revalidation.UPDATED
    assert result.entry is not None
    return result.entry, result.plan


def test_304_without_date_restarts_age_at_time_received() -> None:
    entry = stored(hdrs(cache_control="max-age=60", etag='"v1"'), at=T0)
    fresh, _ = _freshened(entry, hdrs(etag='"v1"'))
    assert fresh.date == T0 + 100
    assert (b"date", format_http_date(T0 + 100)) in fresh.headers
    assert lookup(fresh, now=T0 + 110).action is Action.SERVE


def test_304_age_header_counts() -> None:
    entry = stored(hdrs(cache_control="max-age=60", etag='"v1"'))
    fresh, _ = _freshened(entry, hdrs(etag='"v1"', age="50"))
    assert fresh.initial_age == 50
    assert b"age" not in names(fresh.headers)


def test_304_with_a_different_strong_etag_is_a_mismatch() -> None:
    entry = validated_entry()
    result = decide_revalidation(
        entry, 304, hdrs(etag='"v2"'), [], policy=DEFAULT, request_time=T0, response_time=T0
    )
    assert result.outcome is Revalidation.MISMATCH


def test_validators_agree() -> None:
    entry = validated_entry()
    assert validators_agree(entry, hdrs(etag='"v1"'))
    assert not validators_agree(entry, hdrs(etag='"v2"'))
    weak = stored(hdrs(cache_control="max-age=60", etag='W/"v1"'))
    assert validators_agree(weak, hdrs(etag='W/"v1"'))
    assert not validators_agree(weak, hdrs(etag='"v1"'))  # strong tag vs a weak stored one
    assert validators_agree(entry, hdrs(last_modified=format_http_date(T0 - 100).decode()))
    no_etag = stored(hdrs(cache_control="max-age=60", last_modified=T0_HTTP.decode()))
    assert not validators_agree(no_etag, hdrs(last_modified="Mon, 01 Jan 2001 00:00:00 GMT"))
    assert validators_agree(entry, [])


def test_304_keeps_a_generated_etag_consistent() -> None:
    entry = stored(hdrs(cache_control="max-age=60", last_modified=T0_HTTP.decode()), b"abc")
    fresh, _ = _freshened(entry, hdrs(cache_control="max-age=30"))
    assert fresh.etag == generate_etag(b"abc")
    assert fresh.etag_generated
    assert names(fresh.headers).count(b"etag") == 1


def test_304_that_makes_the_response_unstorable_removes_it() -> None:
    entry = validated_entry()
    fresh, plan = _freshened(entry, hdrs(etag='"v1"', cache_control="no-store"))
    assert plan is None
    assert fresh.body == entry.body
    assert (b"cache-control", b"no-store") in fresh.headers


def test_full_response_replaces_the_stored_one() -> None:
    result = decide_revalidation(
        validated_entry(),
        200,
        hdrs(cache_control="max-age=30", etag='"v2"'),
        [],
        policy=DEFAULT,
        request_time=T0,
        response_time=T0,
    )
    assert (result.outcome, result.reason) == (Revalidation.REPLACED, "max-age")
    assert result.plan is not None
    assert result.plan.response.etag == b'"v2"'


def test_unstorable_full_response_removes_the_stored_one() -> None:
    for status, headers in [(200, hdrs(cache_control="no-store")), (404, [])]:
        result = decide_revalidation(
            validated_entry(),
            status,
            headers,
            [],
            policy=DEFAULT,
            request_time=T0,
            response_time=T0,
        )
        assert result.outcome is Revalidation.REMOVED


def test_server_error_within_stale_if_error_serves_stale() -> None:
    entry = stored(hdrs(cache_control="max-age=10, stale-if-error=60", etag='"v1"'))
    result = decide_revalidation(
        entry, 503, [], [], policy=DEFAULT, request_time=T0 + 30, response_time=T0 + 30
    )
    assert result.outcome is Revalidation.STALE_ON_ERROR
    assert result.entry == entry
    assert result.serve is not None
    assert (result.serve.age, result.serve.ttl) == (30, -20)
    late = decide_revalidation(
        entry, 500, [], [], policy=DEFAULT, request_time=T0 + 71, response_time=T0 + 71
    )
    assert late.outcome is Revalidation.ERROR


def test_revalidated_response_answers_the_clients_own_conditional() -> None:
    entry = validated_entry()
    client = hdrs(if_none_match='"v1"')
    result = decide_revalidation(
        entry, 304, hdrs(etag='"v1"'), client, policy=DEFAULT, request_time=T0, response_time=T0
    )
    assert result.serve is not None
    assert result.serve.not_modified
    other = decide_revalidation(
        entry,
        304,
        hdrs(etag='"v1"'),
        hdrs(if_none_match='"v0"'),
        policy=DEFAULT,
        request_time=T0,
        response_time=T0,
    )
    assert other.serve is not None
    assert not other.serve.not_modified


def test_merge_headers_replaces_in_place_and_appends_new_fields() -> None:
    stored_headers = [*hdrs(a="1", b="2", c="3"), (b"b", b"2bis")]
    update = hdrs(b="new", d="4", content_length="1")
    assert merge_headers(stored_headers, update) == hdrs(a="1", b="new", c="3", d="4")
