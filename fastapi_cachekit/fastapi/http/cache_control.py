"""Cache-Control parsing (RFC 9111 §5.2, §4.2.1, §1.2.2) and Pragma (§5.4), for both directions.

Directive names are case-insensitive; values may be tokens or quoted strings. Repeated and
conflicting directives resolve the conservative way (the value that allows the least reuse):
two `max-age` keep the smaller, `private` beats `public`, an unqualified `no-cache`/`private`
beats a qualified one. An invalid delta-seconds value (`max-age=abc`, `-1`, `1.5`, missing)
counts as its most restrictive value, so `max-age`/`s-maxage` become 0 (stale). Unknown
directives are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .headers import Headers, header_values, split_list

__all__ = [
    "MAX_DELTA_SECONDS",
    "NO_DIRECTIVES",
    "CacheControl",
    "parse_cache_control",
    "parse_delta_seconds",
    "request_cache_control",
]

MAX_DELTA_SECONDS = 2147483648
"""The cap for delta-seconds values (RFC 9111 §1.2.2); also "any staleness" for `max-stale`."""

_MAX_DELTA_DIGITS = len(str(MAX_DELTA_SECONDS))
_NO_FIELDS: frozenset[bytes] = frozenset()


@dataclass(frozen=True, slots=True)
class CacheControl:
    """The directives of one message's Cache-Control field lines (request or response).

    Delta-seconds directives are None when absent. `no_cache`/`private` are the unqualified
    forms; `no_cache_fields`/`private_fields` hold the lowercased field names of the qualified
    forms (empty when unqualified or absent).
    """

    max_age: int | None = None
    s_maxage: int | None = None
    max_stale: int | None = None
    min_fresh: int | None = None
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    no_cache: bool = False
    no_cache_fields: frozenset[bytes] = _NO_FIELDS
    private: bool = False
    private_fields: frozenset[bytes] = _NO_FIELDS
    no_store: bool = False
    no_transform: bool = False
    public: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    must_understand: bool = False
    only_if_cached: bool = False
    immutable: bool = False

    @property
    def has_explicit_freshness(self) -> bool:
        """True when `s-maxage` or `max-age` is present (Expires is judged elsewhere)."""
        return self.s_maxage is not None or self.max_age is not None


NO_DIRECTIVES = CacheControl()
"""A message without Cache-Control directives."""


def parse_delta_seconds(raw: str | None) -> int | None:
    """A delta-seconds value (1*DIGIT, optionally quoted), capped at 2^31; None if invalid."""
    if raw is None:
        return None
    text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    if not text or not text.isascii() or not text.isdigit():
        return None
    # Any number of digits is valid and saturates (RFC 9111 §1.2.2); converting only short
    # digit strings keeps int() from its length limit (ValueError past 4,300 digits).
    digits = text.lstrip("0")
    if len(digits) > _MAX_DELTA_DIGITS:
        return MAX_DELTA_SECONDS
    return min(int(digits or "0"), MAX_DELTA_SECONDS)


def parse_cache_control(values: Sequence[bytes]) -> CacheControl:
    """Parse every Cache-Control field line of a message (pass `[]` when there is none)."""
    if not values:
        return NO_DIRECTIVES
    joined = values[0] if len(values) == 1 else b",".join(values)
    return _parse_text(joined.decode("latin-1"))


def request_cache_control(headers: Headers) -> CacheControl:
    """A request's directives; `Pragma: no-cache` counts as `no-cache` only when the request
    has no Cache-Control field (RFC 9111 §5.4)."""
    values = header_values(headers, b"cache-control")
    if values:
        return parse_cache_control(values)
    for value in header_values(headers, b"pragma"):
        tokens = (token.strip().lower() for token in value.split(b","))
        if b"no-cache" in tokens:
            return _PRAGMA_NO_CACHE
    return NO_DIRECTIVES


_PRAGMA_NO_CACHE = CacheControl(no_cache=True)


@lru_cache(maxsize=1024)
def _parse_text(text: str) -> CacheControl:
    found: dict[str, list[str | None]] = {}
    for member in split_list(text):
        name, sep, raw = member.partition("=")
        key = name.strip().lower()
        if key:
            found.setdefault(key, []).append(raw.strip() if sep else None)
    return _build(found)


def _build(found: dict[str, list[str | None]]) -> CacheControl:
    no_cache, no_cache_fields = _field_list(found.get("no-cache"))
    private, private_fields = _field_list(found.get("private"))
    return CacheControl(
        max_age=_smallest(found.get("max-age"), invalid=0),
        s_maxage=_smallest(found.get("s-maxage"), invalid=0),
        max_stale=_max_stale(found.get("max-stale")),
        min_fresh=_largest(found.get("min-fresh"), invalid=MAX_DELTA_SECONDS),
        stale_while_revalidate=_smallest(found.get("stale-while-revalidate"), invalid=0),
        stale_if_error=_smallest(found.get("stale-if-error"), invalid=0),
        no_cache=no_cache,
        no_cache_fields=no_cache_fields,
        private=private,
        private_fields=private_fields,
        no_store="no-store" in found,
        no_transform="no-transform" in found,
        public="public" in found and not private,
        must_revalidate="must-revalidate" in found,
        proxy_revalidate="proxy-revalidate" in found,
        must_understand="must-understand" in found,
        only_if_cached="only-if-cached" in found,
        immutable="immutable" in found,
    )


def _deltas(raws: Iterable[str | None], invalid: int) -> list[int]:
    parsed = (parse_delta_seconds(raw) for raw in raws)
    return [invalid if value is None else value for value in parsed]


def _smallest(raws: list[str | None] | None, *, invalid: int) -> int | None:
    return None if raws is None else min(_deltas(raws, invalid))


def _largest(raws: list[str | None] | None, *, invalid: int) -> int | None:
    return None if raws is None else max(_deltas(raws, invalid))


def _max_stale(raws: list[str | None] | None) -> int | None:
    """`max-stale` alone accepts any staleness; an invalid value accepts none."""
    if raws is None:
        return None
    values = [MAX_DELTA_SECONDS if raw is None else parse_delta_seconds(raw) for raw in raws]
    return min(0 if value is None else value for value in values)


def _field_list(raws: list[str | None] | None) -> tuple[bool, frozenset[bytes]]:
    """(unqualified, field names) for `no-cache`/`private`; an empty list counts as unqualified."""
    if raws is None:
        return False, _NO_FIELDS
    names: set[bytes] = set()
    for raw in raws:
        fields = _field_names(raw)
        if not fields:
            return True, _NO_FIELDS
        names.update(fields)
    return False, frozenset(names)


def _field_names(raw: str | None) -> list[bytes]:
    if raw is None:
        return []
    text = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    return [name.strip().lower().encode("latin-1") for name in text.split(",") if name.strip()]
