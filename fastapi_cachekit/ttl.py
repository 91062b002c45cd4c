"""Time to live: the one place that parses a TTL, bounds it, and names the default.

A TTL is a `timedelta`, a number of seconds (int or float) or None ("never expires"). An
accepted TTL lies between MIN_TTL and MAX_TTL: the service, `@cached`, `@cached_route` and
`CacheMiddleware` all accept exactly these, and all refuse anything else with InvalidTTLError
(the middleware's options turn it into a ConfigurationError, as for its other options).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, TypeAlias

from .errors import InvalidTTLError

__all__ = ["DEFAULT_TTL", "MAX_TTL", "MIN_TTL", "TTL", "DefaultTTL", "bounded_ttl", "ttl_seconds"]

TTL: TypeAlias = "timedelta | int | float | None"

MIN_TTL: Final = 0.001
"""The shortest TTL, in seconds: expiry is kept with millisecond resolution on every backend."""

MAX_TTL: Final = 2**31
"""The longest TTL, in seconds (about 68 years): RFC 9111's delta-seconds saturate at the same
value, so an HTTP lifetime always fits, and every backend stores its expiry exactly."""


class DefaultTTL:
    """The type of DEFAULT_TTL: "use the service's default TTL" (None means forever)."""

    def __repr__(self) -> str:
        return "DEFAULT_TTL"


DEFAULT_TTL: Final = DefaultTTL()
"""Pass as `ttl` (or leave `ttl` out) for the service's default TTL; `ttl=None` never expires."""


def ttl_seconds(ttl: TTL) -> float | None:
    """`ttl` in seconds, rounded to the millisecond, or None for "never expires".

    Raises InvalidTTLError for anything else: a wrong type, NaN, or a value outside
    [MIN_TTL, MAX_TTL] (integers of any size included).
    """
    if ttl is None:
        return None
    if isinstance(ttl, timedelta):
        seconds: int | float = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = ttl
    else:
        raise InvalidTTLError(
            f"ttl must be a timedelta, seconds (int/float) or None, got {type(ttl).__name__}"
        )
    # Compared before any conversion: float() of a huge int raises OverflowError.
    if not seconds >= MIN_TTL:  # also NaN
        raise InvalidTTLError(
            f"ttl must be at least 1 ms, got {ttl!r}: to remove an entry use delete(), "
            "and for an entry that never expires pass ttl=None"
        )
    if seconds > MAX_TTL:  # also +inf
        raise InvalidTTLError(
            f"ttl must be at most {MAX_TTL} s (about 68 years), got {_shown(ttl)}: for an "
            "entry that never expires pass ttl=None"
        )
    return round(float(seconds), 3)


def _shown(ttl: object) -> str:
    """`ttl` for an error message, a huge integer shortened to its first digits."""
    text = repr(ttl)
    return text if len(text) <= 24 else f"{text[:6]}... ({len(text)} digits)"


def bounded_ttl(seconds: float) -> float:
    """A lifetime the kit computed itself (from HTTP freshness, say), brought into range."""
    if not seconds >= MIN_TTL:  # also NaN
        return MIN_TTL
    return min(seconds, MAX_TTL)
