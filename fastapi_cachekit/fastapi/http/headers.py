"""Header-list helpers for ASGI-style headers: lookups, comma lists, hop-by-hop and Vary.

Headers are `(name, value)` byte pairs as in ASGI; request names are lowercase (ASGI promises
that), response names are lowercased once when a response is analysed for storage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TypeAlias

__all__ = [
    "FORWARDING_FIELDS",
    "HOP_BY_HOP",
    "Header",
    "HeaderList",
    "Headers",
    "VaryValues",
    "combined_value",
    "connection_options",
    "header_values",
    "keyed_field_names",
    "lowercase_names",
    "normalise_field_value",
    "preference_list",
    "split_list",
    "strip_hop_by_hop",
    "vary_field_names",
    "vary_matches",
    "vary_values",
]

Header: TypeAlias = tuple[bytes, bytes]
Headers: TypeAlias = Sequence[Header]
"""Any sequence of `(name, value)` pairs (what functions accept)."""
HeaderList: TypeAlias = list[Header]
"""A fresh, caller-owned list of pairs (what functions that build headers return)."""
VaryValues: TypeAlias = tuple[tuple[bytes, "bytes | None"], ...]
"""(field name, normalised request value or None when the request lacked the field)."""

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Fields that describe one connection (RFC 9110 §7.6.1) and are never stored (RFC 9111 §3.1)."""

FORWARDING_FIELDS = frozenset(
    {
        b"forwarded",
        b"x-forwarded-host",
        b"x-forwarded-proto",
        b"x-forwarded-scheme",
        b"x-forwarded-port",
        b"x-forwarded-prefix",
        b"x-forwarded-server",
        b"x-original-url",
        b"x-original-host",
        b"x-rewrite-url",
        b"x-host",
        b"x-http-method-override",
        b"x-http-method",
        b"x-method-override",
    }
)
"""Request fields by which proxies (or clients posing as one) tell an app another URL, host,
scheme or method than the request line's. Frameworks reflect them into links and redirects,
yet no response names them in Vary; the cache keys on them as if every response did.
X-Forwarded-For and X-Real-IP are not here: they name the client, one value per client."""

# Proactive negotiation fields (RFC 9110 §12.5): a list of case-insensitive ranges, each with
# an optional weight. Requests that state the same preferences in another order, case, spacing
# or weight spelling ask for the same thing, so Vary matching compares a normal form (§4.1).
_PREFERENCE_LISTS = frozenset(
    {b"accept", b"accept-charset", b"accept-encoding", b"accept-language"}
)
_QVALUE = re.compile(rb"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_MEMO_MAX_VALUE = 256  # longer values are normalised each time, so the memo stays small


def header_values(headers: Headers, name: bytes) -> list[bytes]:
    """Every value of field `name` (lowercase), in order."""
    return [value for key, value in headers if key == name]


def combined_value(headers: Headers, name: bytes) -> bytes | None:
    """The field's lines joined with ", " (RFC 9110 §5.3), or None when absent."""
    values = header_values(headers, name)
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


def lowercase_names(headers: Iterable[Header]) -> HeaderList:
    """A copy of `headers` with every field name lowercased."""
    return [(name.lower(), value) for name, value in headers]


def split_list(text: str) -> list[str]:
    """Split a comma-separated field value into stripped members, honouring quoted strings.

    Empty members are dropped (RFC 9110 §5.6.1); a comma inside `"..."` does not split.
    """
    if '"' not in text:
        return [part.strip() for part in text.split(",") if part.strip()]
    members: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            members.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    members.append("".join(current).strip())
    return [member for member in members if member]


def connection_options(headers: Headers) -> frozenset[bytes]:
    """Field names listed in `Connection` (they are hop-by-hop for this message)."""
    names: set[bytes] = set()
    for value in header_values(headers, b"connection"):
        names.update(token.lower() for token in _tokens(value))
    return frozenset(names)


def strip_hop_by_hop(headers: Headers) -> HeaderList:
    """`headers` without hop-by-hop fields and without the fields `Connection` names."""
    drop = HOP_BY_HOP | connection_options(headers)
    return [(name, value) for name, value in headers if name not in drop]


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip() for token in value.split(b",") if token.strip()]


# --- Vary (RFC 9111 §4.1) -------------------------------------------------------------------


def vary_field_names(headers: Headers) -> tuple[bytes, ...]:
    """The request fields a response varies on, lowercased, unique, in order (`*` kept)."""
    names: dict[bytes, None] = {}
    for value in header_values(headers, b"vary"):
        for token in _tokens(value):
            names[token.lower()] = None
    return tuple(names)


def normalise_field_value(name: bytes, values: Sequence[bytes]) -> bytes | None:
    """One comparable value for a request field: lines combined, whitespace folded.

    Whitespace around commas is removed and runs of spaces/tabs become one space. The
    negotiation fields (Accept, Accept-Charset, Accept-Encoding, Accept-Language) are put in a
    normal form (`preference_list`). An absent field is None, which only matches another
    absent field.
    """
    if not values:
        return None
    joined = values[0] if len(values) == 1 else b",".join(values)
    if name in _PREFERENCE_LISTS:
        if len(joined) <= _MEMO_MAX_VALUE:
            return _memo_preference_list(joined)
        return preference_list(joined)
    if b"," in joined:
        return b",".join(b" ".join(part.split()) for part in joined.split(b","))
    return b" ".join(joined.split())


def preference_list(value: bytes) -> bytes:
    """A negotiation field in normal form (RFC 9110 §12.4.2, §12.5): members lowercased and
    stripped, weights written canonically (`q=1` dropped, `q=0.500` as `q=0.5`), a repeated
    member counted once (its first weight), and members ordered by weight, then by name.
    `en, de` and `DE;q=1.0,en` are then one value. A weight that is not a qvalue stays part
    of its member, so such requests are never merged."""
    weights: dict[bytes, bytes] = {}
    for member in value.split(b","):
        member_range, weight = _weighted(member)
        if member_range or weight != b"1":
            weights.setdefault(member_range, weight)
    ordered = sorted(weights.items(), key=lambda item: (-float(item[1]), item[0]))
    return b",".join(r if w == b"1" else r + b";q=" + w for r, w in ordered)


_memo_preference_list = lru_cache(maxsize=1024)(preference_list)


def _weighted(member: bytes) -> tuple[bytes, bytes]:
    """(the member without its weight, the weight as a canonical qvalue)."""
    parts = [part.strip(b" \t") for part in member.split(b";")]
    kept = [parts[0].lower()]
    weight = b"1"
    for param in parts[1:]:
        key, equals, raw = param.partition(b"=")
        key, raw = key.strip(b" \t").lower(), raw.strip(b" \t")
        if key == b"q" and _QVALUE.fullmatch(raw):
            weight = (b"%.3f" % float(raw)).rstrip(b"0").rstrip(b".")
        elif param:
            kept.append(key + equals + raw)
    return b";".join(kept), weight


def keyed_field_names(response_headers: Headers, request_headers: Headers) -> tuple[bytes, ...]:
    """The request fields a stored response is keyed on: those its Vary names, and the
    forwarding fields the request carries (see `FORWARDING_FIELDS`)."""
    names = vary_field_names(response_headers)
    forwarded = [name for name, _ in request_headers if name in FORWARDING_FIELDS]
    if not forwarded:
        return names
    return tuple(dict.fromkeys(names + tuple(forwarded)))


def vary_values(names: Iterable[bytes], request_headers: Headers) -> VaryValues:
    """The normalised values of `names` in a request, as stored with a response."""
    return tuple(
        (name, normalise_field_value(name, header_values(request_headers, name))) for name in names
    )


def vary_matches(stored: VaryValues, request_headers: Headers) -> bool:
    """True when the request carries the same normalised values the stored response varied on."""
    for name, value in stored:
        if normalise_field_value(name, header_values(request_headers, name)) != value:
            return False
    return True
