"""Freshness lifetime and age arithmetic (RFC 9111 §4.2.1-§4.2.3, §5.1, §5.3).

Everything here runs once, when a response is stored or freshened; a hit then needs only
`current_age = initial_age + (now - response_time)` and `ttl = lifetime - current_age`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .cache_control import MAX_DELTA_SECONDS, CacheControl, parse_delta_seconds
from .dates import parse_http_date

__all__ = [
    "DEFAULT_HEURISTIC_FRACTION",
    "age_header_value",
    "corrected_initial_age",
    "current_age",
    "explicit_lifetime",
    "heuristic_lifetime",
    "whole_seconds",
]

DEFAULT_HEURISTIC_FRACTION = 0.1
"""Heuristic freshness is this fraction of the time since Last-Modified (RFC 9111 §4.2.2)."""


def explicit_lifetime(
    cc: CacheControl, date: float, expires: Sequence[bytes], *, now: float | None = None
) -> float | None:
    """The freshness lifetime the response states, or None when it states none (§4.2.1).

    `s-maxage` wins over `max-age`, which wins over `Expires - Date`. An `Expires` that does
    not parse (`0`, `-1`, garbage) or appears more than once means already stale (0).
    """
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    if not expires:
        return None
    if len(expires) > 1:
        return 0.0
    expiry = parse_http_date(expires[0], now=now)
    if expiry is None:
        return 0.0
    return max(0.0, expiry - date)


def heuristic_lifetime(
    date: float,
    last_modified: float | None,
    *,
    fraction: float = DEFAULT_HEURISTIC_FRACTION,
    cap: float,
) -> float | None:
    """`fraction` of (Date - Last-Modified), at most `cap`; None without a usable
    Last-Modified (absent, or later than Date) (RFC 9111 §4.2.2)."""
    if last_modified is None or last_modified > date:
        return None
    return min((date - last_modified) * fraction, cap)


def age_header_value(values: Sequence[bytes]) -> float | None:
    """The `Age` the sender stated, in seconds: 0 when absent, None when invalid (§5.1).

    `Age` is a singleton sent as a list by some intermediaries: the first member of the
    combined field value counts (`0, 7200` on one line or on two lines mean the same) and the
    rest is discarded. A first member that is not delta-seconds makes the stated age unknown,
    so the caller must not trust the response's freshness.
    """
    members = (member.strip() for value in values for member in value.split(b","))
    first = next((member for member in members if member), None)
    if first is None:
        return 0.0
    age = parse_delta_seconds(first.decode("latin-1"))
    return None if age is None else float(age)


def corrected_initial_age(
    *, age_value: float, date: float, request_time: float, response_time: float
) -> float:
    """The age of a response when it was received (RFC 9111 §4.2.3).

    max(apparent_age, corrected_age_value), where apparent_age = max(0, response_time - date)
    and corrected_age_value = age_value + (response_time - request_time).
    """
    apparent_age = max(0.0, response_time - date)
    response_delay = max(0.0, response_time - request_time)
    return max(apparent_age, age_value + response_delay)


def current_age(initial_age: float, response_time: float, now: float) -> float:
    """corrected_initial_age + resident_time (RFC 9111 §4.2.3); never negative."""
    return initial_age + max(0.0, now - response_time)


def whole_seconds(seconds: float) -> int:
    """An `Age`-style value: whole seconds, rounded down, within [0, 2^31] (§1.2.2, §5.1)."""
    if seconds <= 0:
        return 0
    return min(math.floor(seconds), MAX_DELTA_SECONDS)
