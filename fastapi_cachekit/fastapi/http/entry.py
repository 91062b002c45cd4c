"""StoredResponse: a stored response with everything a hit needs, and its binary encoding.

Layout (version 1, little-endian): a fixed `struct` header (magic `\\xffCK\\x01`, status, flags,
seven float64 times/durations, four section lengths), then the header section (names and
values joined by NUL, which RFC 9110 §5.5 forbids inside fields), the Vary section (name NUL
`+value` or `-` for an absent field), the ETag, the Last-Modified value, and the raw body.
Decoding is one `unpack_from`, a few slices and one `split`; anything that is not a valid
version-1 entry decodes to None.
"""

from __future__ import annotations

import struct
from itertools import chain
from typing import NamedTuple

from ...errors import SerializationError
from .freshness import current_age
from .headers import Header, VaryValues

__all__ = [
    "FLAG_ETAG_GENERATED",
    "FLAG_MUST_REVALIDATE",
    "FLAG_NO_CACHE",
    "FLAG_PROXY_REVALIDATE",
    "FLAG_PUBLIC",
    "FLAG_S_MAXAGE",
    "MAGIC",
    "StoredResponse",
    "decode_entry",
    "encode_entry",
]

FLAG_NO_CACHE = 1
"""Unqualified `no-cache`: revalidate before every use."""
FLAG_MUST_REVALIDATE = 2
FLAG_PROXY_REVALIDATE = 4
FLAG_S_MAXAGE = 8
"""`s-maxage` was present (implies proxy-revalidate for a shared cache, §5.2.2.10)."""
FLAG_PUBLIC = 16
FLAG_ETAG_GENERATED = 32
"""The ETag was made by the cache from the body; the app never saw it."""

_NO_STALE = FLAG_NO_CACHE | FLAG_MUST_REVALIDATE | FLAG_PROXY_REVALIDATE
_SHAREABLE = FLAG_PUBLIC | FLAG_S_MAXAGE
_AUTHORIZED_OK = FLAG_PUBLIC | FLAG_S_MAXAGE | FLAG_MUST_REVALIDATE

MAGIC = b"\xffCK\x01"
_HEAD = struct.Struct("<4sHHdddddddIIHH")
_SIZE = _HEAD.size


class StoredResponse(NamedTuple):
    """A response as stored: replayable headers and body plus the metadata of the rules.

    `initial_age` is the corrected initial age (§4.2.3) and `lifetime` the freshness lifetime
    (§4.2.1), both fixed at store time, so a hit is arithmetic. `etag` and `last_modified` are
    raw field values (b"" when absent); `vary` holds the request values seen at store time.
    """

    status: int
    headers: tuple[Header, ...]
    body: bytes
    request_time: float
    response_time: float
    date: float
    initial_age: float
    lifetime: float
    stale_while_revalidate: float
    stale_if_error: float
    flags: int
    etag: bytes
    last_modified: bytes
    vary: VaryValues

    def age(self, now: float) -> float:
        """The current age in seconds (§4.2.3)."""
        return current_age(self.initial_age, self.response_time, now)

    def ttl(self, now: float) -> float:
        """Remaining freshness in seconds; zero or negative once stale (§4.2)."""
        return self.lifetime - self.age(now)

    @property
    def no_cache(self) -> bool:
        """True when every use needs revalidation (unqualified `no-cache`)."""
        return bool(self.flags & FLAG_NO_CACHE)

    @property
    def forbids_stale(self) -> bool:
        """True when `no-cache`, `must-revalidate` or `proxy-revalidate` forbid serving stale."""
        return bool(self.flags & _NO_STALE)

    @property
    def forbids_max_stale(self) -> bool:
        """True when a request's `max-stale` may not be honoured (adds `s-maxage`, §5.2.2.10)."""
        return bool(self.flags & (_NO_STALE | FLAG_S_MAXAGE))

    @property
    def shareable(self) -> bool:
        """True when the response is explicitly shareable (`public` or `s-maxage`)."""
        return bool(self.flags & _SHAREABLE)

    @property
    def authorized_ok(self) -> bool:
        """True when it may answer requests with Authorization (§3.5)."""
        return bool(self.flags & _AUTHORIZED_OK)

    @property
    def etag_generated(self) -> bool:
        """True when the ETag was computed by the cache rather than sent by the app."""
        return bool(self.flags & FLAG_ETAG_GENERATED)

    @property
    def origin_etag(self) -> bytes:
        """The app's own ETag (b"" when the cache generated or lacks one)."""
        return b"" if self.flags & FLAG_ETAG_GENERATED else self.etag

    @property
    def has_validators(self) -> bool:
        """True when the app can answer a conditional request about this response."""
        return bool(self.origin_etag or self.last_modified)


def encode_entry(entry: StoredResponse) -> bytes:
    """The entry as bytes; raises SerializationError if a field holds NUL or is oversized."""
    header_blob = _join_checked(chain.from_iterable(entry.headers))
    vary_blob = _join_checked(
        chain.from_iterable(
            (name, b"-" if value is None else b"+" + value) for name, value in entry.vary
        )
    )
    if len(entry.etag) > 0xFFFF or len(entry.last_modified) > 0xFFFF:
        raise SerializationError("ETag or Last-Modified value is too long to store")
    head = _HEAD.pack(
        MAGIC,
        entry.status,
        entry.flags,
        entry.request_time,
        entry.response_time,
        entry.date,
        entry.initial_age,
        entry.lifetime,
        entry.stale_while_revalidate,
        entry.stale_if_error,
        len(header_blob),
        len(vary_blob),
        len(entry.etag),
        len(entry.last_modified),
    )
    return b"".join((head, header_blob, vary_blob, entry.etag, entry.last_modified, entry.body))


def _join_checked(parts: chain[bytes]) -> bytes:
    items = list(parts)
    if any(b"\0" in item for item in items):
        raise SerializationError("a stored header contains NUL, which HTTP forbids")
    return b"\0".join(items)


def decode_entry(data: bytes) -> StoredResponse | None:
    """The entry encoded in `data`, or None when `data` is not a valid version-1 entry."""
    if len(data) < _SIZE or data[:4] != MAGIC:
        return None
    fields = _HEAD.unpack_from(data)
    header_end = _SIZE + fields[10]
    vary_end = header_end + fields[11]
    etag_end = vary_end + fields[12]
    body_start = etag_end + fields[13]
    if body_start > len(data) or not 100 <= fields[1] <= 599:
        return None
    headers = _pairs(data[_SIZE:header_end])
    vary = _vary(data[header_end:vary_end]) if fields[11] else ()
    if headers is None or vary is None:
        return None
    etag, last_modified = data[vary_end:etag_end], data[etag_end:body_start]
    body = data[body_start:]
    return StoredResponse._make(
        (fields[1], headers, body, *fields[3:10], fields[2], etag, last_modified, vary)
    )


def _pairs(blob: bytes) -> tuple[Header, ...] | None:
    if not blob:
        return ()
    parts = blob.split(b"\0")
    if len(parts) % 2:
        return None
    items = iter(parts)
    return tuple(zip(items, items))  # noqa: B905 (the length is checked to be even)


def _vary(blob: bytes) -> VaryValues | None:
    pairs = _pairs(blob)
    if pairs is None:
        return None
    vary: list[tuple[bytes, bytes | None]] = []
    for name, value in pairs:
        if value == b"-":
            vary.append((name, None))
        elif value[:1] == b"+":
            vary.append((name, value[1:]))
        else:
            return None
    return tuple(vary)
