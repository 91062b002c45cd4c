"""HTTP-date parsing and formatting (RFC 9110 §5.6.7).

Recipients accept the three formats: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the
obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37
1994`). Senders use IMF-fixdate only. Times are float seconds since the epoch, in UTC.
"""

from __future__ import annotations

import calendar
import re
import time

__all__ = ["format_http_date", "parse_http_date"]

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.lower(): index for index, name in enumerate(_MONTHS, start=1)}
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_LONG_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTH = r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_TIME = r"(?P<hour>\d\d):(?P<minute>\d\d):(?P<second>\d\d)"

_IMF_FIXDATE = re.compile(
    rf"{_DAY}, (?P<day>\d\d) {_MONTH} (?P<year>\d{{4}}) {_TIME} GMT", re.IGNORECASE
)
_RFC850 = re.compile(
    rf"{_LONG_DAY}, (?P<day>\d\d)-{_MONTH}-(?P<year>\d\d) {_TIME} GMT", re.IGNORECASE
)
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} (?P<day>[ \d]\d) {_TIME} (?P<year>\d{{4}})", re.IGNORECASE)


def parse_http_date(value: bytes | str, *, now: float | None = None) -> float | None:
    """The epoch time of an HTTP-date in any of the three formats, or None if it is invalid.

    A two-digit RFC 850 year that would lie more than 50 years after `now` means the previous
    century (RFC 9110 §5.6.7); without `now`, years 00-69 are 20xx and 70-99 are 19xx.
    """
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    match = _IMF_FIXDATE.fullmatch(text) or _ASCTIME.fullmatch(text)
    year_offset = 0
    if match is None:
        match = _RFC850.fullmatch(text)
        if match is None:
            return None
        year_offset = _century(int(match["year"]), now)
    return _epoch(
        int(match["year"]) + year_offset,
        _MONTH_NUMBER[match["month"].lower()],
        int(match["day"].strip()),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"]),
    )


def _century(two_digits: int, now: float | None) -> int:
    if now is None:
        return 2000 if two_digits < 70 else 1900
    this_year = time.gmtime(now).tm_year
    candidate = this_year - this_year % 100 + two_digits
    if candidate > this_year + 50:
        candidate -= 100
    return candidate - two_digits


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> float | None:
    if not 1 <= year <= 9999 or not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    # A leap second (:60) is read as the last second of its minute.
    return float(calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)))


def format_http_date(timestamp: float) -> bytes:
    """`timestamp` as an IMF-fixdate, e.g. `b"Sun, 06 Nov 1994 08:49:37 GMT"`."""
    t = time.gmtime(timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    ).encode("ascii")
