"""The stored representation: the binary entry encoding and a stored response's age and TTL
(`http/entry.py`)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastapi_cachekit.errors import SerializationError
from fastapi_cachekit.fastapi.http import MAGIC, StoredResponse, decode_entry, encode_entry

from .support import EXPLICIT, T0, hdrs, stored


def test_entry_age_and_ttl_arithmetic() -> None:
    entry = stored(hdrs(cache_control="max-age=60"), at=T0)
    assert entry.age(T0 + 15.5) == 15.5
    assert entry.ttl(T0 + 15.5) == 44.5
    assert entry.ttl(T0 + 70) == -10


def test_entry_round_trip() -> None:
    entry = stored(
        hdrs(cache_control="max-age=60, stale-if-error=5", vary="Accept-Encoding, X-Absent"),
        b"\x00\xffbinary body",
        request=hdrs(accept_encoding="gzip"),
    )
    raw = encode_entry(entry)
    assert raw.startswith(MAGIC)
    assert decode_entry(raw) == entry
    decoded = decode_entry(raw)
    assert decoded is not None
    assert decoded.vary == ((b"accept-encoding", b"gzip"), (b"x-absent", None))


def test_entry_encoding_is_compact() -> None:
    entry = stored(EXPLICIT, b"x" * 1000)
    header_bytes = sum(len(name) + len(value) + 2 for name, value in entry.headers)
    assert len(encode_entry(entry)) < 1000 + header_bytes + len(entry.etag) + 100


_header_bytes = st.binary(max_size=20).filter(lambda value: b"\0" not in value)


@given(
    status=st.integers(100, 599),
    headers=st.lists(st.tuples(_header_bytes, _header_bytes), max_size=6),
    body=st.binary(max_size=300),
    times=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=7, max_size=7
    ),
    flags=st.integers(0, 63),
    etag=_header_bytes,
    last_modified=_header_bytes,
    vary=st.lists(st.tuples(_header_bytes, st.none() | _header_bytes), max_size=3),
)
def test_entry_round_trip_property(
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    times: list[float],
    flags: int,
    etag: bytes,
    last_modified: bytes,
    vary: list[tuple[bytes, bytes | None]],
) -> None:
    entry = StoredResponse._make(
        (status, tuple(headers), body, *times, flags, etag, last_modified, tuple(vary))
    )
    assert decode_entry(encode_entry(entry)) == entry


@given(st.binary(max_size=300))
def test_decode_garbage_returns_none_or_entry(raw: bytes) -> None:
    result = decode_entry(raw)
    assert result is None or isinstance(result, StoredResponse)
    assert decode_entry(MAGIC + raw) is None or isinstance(
        decode_entry(MAGIC + raw), StoredResponse
    )


def test_decode_truncated_wrong_magic_or_version_is_none() -> None:
    raw = encode_entry(stored(EXPLICIT, b"hello"))
    assert decode_entry(b"") is None
    assert decode_entry(b"{}") is None
    assert decode_entry(b'{"status": 200}' * 10) is None
    assert decode_entry(raw[:20]) is None
    assert decode_entry(b"\xffCK\x02" + raw[4:]) is None
    header_only = raw[: struct.calcsize("<4sHHdddddddIIHH") + 10]
    assert decode_entry(header_only) is None
    for cut in range(len(raw) - 5):
        result = decode_entry(raw[:cut])
        assert result is None or result.body != b"hello"


def test_encode_rejects_nul() -> None:
    entry = stored(EXPLICIT)._replace(headers=((b"x", b"a\0b"),))
    with pytest.raises(SerializationError):
        encode_entry(entry)


def test_decode_corrupt_sections_is_none() -> None:
    raw = bytearray(encode_entry(stored(EXPLICIT, b"hello")))
    size = struct.calcsize("<4sHHdddddddIIHH")
    header_len = struct.unpack_from("<I", raw, size - 12)[0]
    odd = bytearray(raw)
    odd[size + 1] = 0  # a NUL inside the first name: an odd number of header parts
    assert decode_entry(bytes(odd)) is None
    bad_status = bytearray(raw)
    struct.pack_into("<H", bad_status, 4, 42)
    assert decode_entry(bytes(bad_status)) is None
    vary = stored(hdrs(cache_control="max-age=60", vary="x-a"), request=hdrs(x_a="1"))
    raw_vary = bytearray(encode_entry(vary))
    vary_start = size + struct.unpack_from("<I", raw_vary, size - 12)[0]
    assert raw_vary[vary_start + 4] == ord("+")
    odd_vary = bytearray(raw_vary)
    odd_vary[vary_start + 1] = 0  # "x\0a": an odd number of Vary parts
    assert decode_entry(bytes(odd_vary)) is None
    raw_vary[vary_start + 4] = ord("?")
    assert decode_entry(bytes(raw_vary)) is None
    assert header_len > 0
