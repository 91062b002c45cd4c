"""Validators and conditional requests: ETags, If-None-Match, If-Modified-Since, 304 headers.

RFC 9110 §8.8.3 (entity tags, weak comparison), §13.1.2 (If-None-Match), §13.1.3
(If-Modified-Since), §13.2.2 (If-None-Match takes precedence), §15.4.5 (what a 304 carries);
RFC 9111 §4.3.2 (a cache answering conditionals from a stored response).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .dates import parse_http_date
from .entry import StoredResponse
from .headers import HeaderList

__all__ = [
    "NOT_MODIFIED_FIELDS",
    "generate_etag",
    "is_weak",
    "not_modified",
    "not_modified_headers",
    "parse_entity_tags",
    "strong_match",
    "weak_match",
]

NOT_MODIFIED_FIELDS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)
"""Fields a 304 repeats from the 200 it stands for (RFC 9110 §15.4.5)."""


def generate_etag(body: bytes) -> bytes:
    """A strong ETag for `body`: a BLAKE2b-128 digest, quoted; identical in every process."""
    return b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode("ascii") + b'"'


def is_weak(etag: bytes) -> bool:
    """True for a weak entity tag (`W/"..."`)."""
    return etag.startswith(b"W/")


def _opaque(etag: bytes) -> bytes:
    return etag[2:] if etag.startswith(b"W/") else etag


def weak_match(a: bytes, b: bytes) -> bool:
    """Weak comparison: the opaque tags match, whatever their weakness (§8.8.3.2)."""
    return _opaque(a.strip()) == _opaque(b.strip())


def strong_match(a: bytes, b: bytes) -> bool:
    """Strong comparison: both tags are strong and identical (§8.8.3.2)."""
    a, b = a.strip(), b.strip()
    return a == b and not is_weak(a)


def parse_entity_tags(values: Sequence[bytes]) -> tuple[bool, tuple[bytes, ...]]:
    """(`*` present, entity tags) of If-None-Match/If-Match field lines.

    Tags keep their quotes and `W/` prefix; a comma inside the quotes is part of the tag.
    Members that are not entity tags are skipped.
    """
    star = False
    tags: list[bytes] = []
    for value in values:
        star |= _scan_tags(value, tags)
    return star, tuple(tags)


def _scan_tags(value: bytes, tags: list[bytes]) -> bool:
    star, i, n = False, 0, len(value)
    while i < n:
        char = value[i : i + 1]
        if char in b" \t,":
            i += 1
            continue
        if char == b"*":
            star, i = True, i + 1
            continue
        start = i
        if value.startswith(b"W/", i):
            i += 2
        end = value.find(b'"', i + 1) if value[i : i + 1] == b'"' else -1
        if end < 0:
            comma = value.find(b",", i)
            i = n if comma < 0 else comma + 1
            continue
        tags.append(value[start : end + 1])
        i = end + 1
    return star


def not_modified(
    entry: StoredResponse, if_none_match: Sequence[bytes], if_modified_since: Sequence[bytes]
) -> bool:
    """True when a GET/HEAD with these conditionals may get a 304 from the stored response.

    Only a stored 200 answers conditionals. If-None-Match (weak comparison, `*`) takes
    precedence; without it, If-Modified-Since is compared with the stored Last-Modified, or
    with the stored Date when there is none (RFC 9111 §4.3.2). An If-Modified-Since that is not
    one valid HTTP-date is ignored.
    """
    if entry.status != 200:
        return False
    if if_none_match:
        star, tags = parse_entity_tags(if_none_match)
        return star or any(weak_match(tag, entry.etag) for tag in tags)
    if len(if_modified_since) != 1:
        return False
    since = parse_http_date(if_modified_since[0])
    if since is None:
        return False
    modified = parse_http_date(entry.last_modified) if entry.last_modified else None
    return (entry.date if modified is None else modified) <= since


def not_modified_headers(entry: StoredResponse) -> HeaderList:
    """The stored fields a 304 for this response carries (no content fields); the caller
    appends Age and Cache-Status. Last-Modified is kept only when there is no ETag."""
    keep = NOT_MODIFIED_FIELDS if entry.etag else NOT_MODIFIED_FIELDS | {b"last-modified"}
    return [(name, value) for name, value in entry.headers if name in keep]
