"""HTTP dates (RFC 9110 §5.6.7): `http/dates.py`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cachekit.fastapi.http import format_http_date, parse_http_date

from .support import T0, T0_HTTP

SUNDAY = 784111777.0  # Sun, 06 Nov 1994 08:49:37 GMT


def test_parse_imf_fixdate() -> None:
    assert parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT") == SUNDAY
    assert parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT ") == SUNDAY


def test_parse_rfc850_date() -> None:
    assert parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT") == SUNDAY


def test_rfc850_two_digit_year_more_than_50_years_ahead_is_last_century() -> None:
    now = parse_http_date(b"Sat, 01 Jan 2050 00:00:00 GMT")
    assert now is not None
    in_2099 = parse_http_date(b"Thursday, 01-Jan-99 00:00:00 GMT", now=now)
    in_1999 = parse_http_date(b"Friday, 01-Jan-99 00:00:00 GMT", now=T0)
    assert in_2099 == parse_http_date(b"Thu, 01 Jan 2099 00:00:00 GMT")
    assert in_1999 == parse_http_date(b"Fri, 01 Jan 1999 00:00:00 GMT")


def test_parse_asctime_date() -> None:
    assert parse_http_date(b"Sun Nov  6 08:49:37 1994") == SUNDAY
    assert parse_http_date(b"Sun Nov 16 08:49:37 1994") == SUNDAY + 10 * 86400


@pytest.mark.parametrize(
    "value",
    [
        b"0",
        b"-1",
        b"",
        b"tomorrow",
        b"Sun, 30 Feb 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 24:00:00 GMT",
        b"Sun, 06 Nov 1994 08:49:37 PST",
        b"Sun, 6 Nov 1994 08:49:37 GMT",
        b"1994-11-06T08:49:37Z",
        b"Sun, 06 Nov 0000 08:49:37 GMT",
    ],
)
def test_invalid_dates_are_none(value: bytes) -> None:
    assert parse_http_date(value) is None


def test_leap_second_is_read_as_59() -> None:
    assert parse_http_date(b"Sat, 31 Dec 2016 23:59:60 GMT") == parse_http_date(
        b"Sat, 31 Dec 2016 23:59:59 GMT"
    )


def test_format_http_date() -> None:
    assert format_http_date(SUNDAY) == b"Sun, 06 Nov 1994 08:49:37 GMT"
    assert format_http_date(T0 + 0.9) == T0_HTTP


@given(st.integers(0, 253402300799))
def test_http_date_round_trip(timestamp: int) -> None:
    assert parse_http_date(format_http_date(timestamp)) == timestamp


@given(st.binary(max_size=64))
def test_date_parser_never_raises(raw: bytes) -> None:
    assert parse_http_date(raw) is None or isinstance(parse_http_date(raw), float)
