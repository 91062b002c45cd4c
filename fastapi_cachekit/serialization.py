"""Value <-> bytes codecs: JSON (orjson) by default, msgpack with the `msgpack` extra, signed
pickle only by explicit opt-in; any of them compressed above a size threshold.

Every stored value says how to read it. JSON is stored bare (it never starts with a NUL
byte); every other format starts with a frame marker, NUL, "ck" and a letter: `p` signed
pickle, `m` msgpack, `z` compressed (then a byte naming the algorithm). So a cache reads the
values it wrote under other compression settings, JSON and msgpack caches read each other's
values, and only a cache configured for pickle ever unpickles.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import importlib
import math
import pickle
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from types import ModuleType
from typing import Any, Protocol
from uuid import UUID

import orjson

from .errors import ConfigurationError, SerializationError, TamperedValueError

__all__ = [
    "COMPRESSIONS",
    "SERIALIZERS",
    "Codec",
    "Compressed",
    "JsonCodec",
    "MsgpackCodec",
    "SignedPickleCodec",
    "make_codec",
]

SERIALIZERS = ("json", "msgpack", "pickle")

_FRAME = b"\x00ck"
_PICKLE_MAGIC = b"\x00ckp1"
_MSGPACK_MAGIC = b"\x00ckm1"
_COMPRESSED = b"\x00ckz"
_find_null = re.compile(b"null").search
_MAC_SIZE = hashlib.sha256().digest_size
_MSGPACK_EXTRA = "pip install 'fastapi-cache-kit[msgpack]'"


class Codec(Protocol):
    """Turns values into bytes and back: what `CacheService(codec=...)` takes."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


# --- compression ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compressor:
    marker: bytes
    compress: Callable[[bytes], bytes]
    decompress: Callable[[bytes], bytes]


COMPRESSIONS: dict[str, _Compressor] = {
    "zlib": _Compressor(_COMPRESSED + b"1", zlib.compress, zlib.decompress),
}
"""The algorithms by `compression` setting name; each marks the values it compressed."""
_BY_MARKER = {compressor.marker: compressor for compressor in COMPRESSIONS.values()}


def _decompress(data: bytes) -> bytes:
    compressor = _BY_MARKER.get(data[: len(_COMPRESSED) + 1])
    if compressor is None:
        raise SerializationError(
            "stored value was compressed with an algorithm this version does not know"
        )
    try:
        inner = compressor.decompress(data[len(compressor.marker) :])
    except zlib.error as exc:
        raise SerializationError(f"stored value does not decompress: {exc}") from None
    if inner.startswith(_COMPRESSED):  # never written by this kit; nesting would recurse
        raise SerializationError("stored value is compressed twice; refused")
    return inner


class Compressed:
    """`codec`, with encoded values of `threshold` bytes or more compressed.

    Reads compressed and plain values alike, so turning compression on or off, or changing
    the threshold, leaves every stored value readable.
    """

    def __init__(self, codec: Codec, algorithm: str, threshold: int) -> None:
        if algorithm not in COMPRESSIONS:
            raise ConfigurationError(
                f"unknown compression {algorithm!r}; choose 'none' or one of {sorted(COMPRESSIONS)}"
            )
        self._codec = codec
        self._compressor = COMPRESSIONS[algorithm]
        self._threshold = threshold

    def encode(self, value: Any) -> bytes:
        data = self._codec.encode(value)
        if len(data) < self._threshold:
            return data
        packed = self._compressor.marker + self._compressor.compress(data)
        return packed if len(packed) < len(data) else data  # incompressible: stored plain

    def decode(self, data: bytes) -> Any:
        return self._codec.decode(data)


# --- JSON --------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError


def _has_non_finite(value: Any) -> bool:
    """Whether a float NaN or infinity is anywhere in `value` (dict keys aside: JSON makes
    them strings)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_non_finite(item) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_has_non_finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    if hasattr(value, "model_dump") and callable(value.model_dump):
        # The Python form: the JSON form has already turned NaN into None.
        return _has_non_finite(value.model_dump())
    return False


class JsonCodec:
    """JSON via orjson. Values come back in their JSON form: dicts, lists, strings, numbers.

    datetime/date/UUID/Decimal/Enum become strings or numbers, and dataclasses and pydantic
    models become dicts; give a target type (as `@cached` does from the return annotation)
    to get the original types back.
    """

    _OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

    def encode(self, value: Any) -> bytes:
        # Most values need neither option, and a call without options is measurably faster
        # (principle 6). The options only widen what can be serialized (non-str dict keys,
        # numpy), so whenever the plain call succeeds its bytes are the options call's.
        try:
            data = orjson.dumps(value, default=_json_default)
        except TypeError:
            data = self._encode_with_options(value)
        # orjson writes NaN and infinities as null, which would come back as None: refuse
        # them. Only a value whose JSON holds a null can hold one, so most values skip the
        # walk (principle 6).
        if _find_null(data) and _has_non_finite(value):
            raise SerializationError(
                f"cannot store a {type(value).__name__} holding NaN or infinity as JSON: it "
                "would come back as None; replace it (with None or a string) before caching, "
                "or choose serializer='msgpack' (floats round-trip exactly)"
            )
        return data

    def _encode_with_options(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value, default=_json_default, option=self._OPTIONS)
        except TypeError as exc:
            raise SerializationError(
                f"cannot serialize a value of type {type(value).__name__} as JSON ({exc}); "
                "convert it to dicts/lists/str/numbers first, or opt into serializer='pickle'"
            ) from None

    def decode(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if data.startswith(_FRAME):  # only framed values are not JSON: no cost on hits
                return _decode_framed(self, data)
            raise SerializationError(f"stored value is not valid JSON: {exc}") from None


def _json_loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"stored value is not valid JSON nor msgpack: {exc}") from None


def _decode_framed(codec: Codec, data: bytes) -> Any:
    """Decode a value another codec or compression setting wrote, where that is safe."""
    if data.startswith(_COMPRESSED):
        return codec.decode(_decompress(data))
    if data.startswith(_MSGPACK_MAGIC):
        return _msgpack_unpack(data)
    if data.startswith(_PICKLE_MAGIC):
        raise SerializationError(
            "stored value was written with serializer='pickle'; this cache does not unpickle"
        )
    raise SerializationError("stored value has a frame marker this version does not know")


# --- msgpack -----------------------------------------------------------------------------


def _msgpack() -> ModuleType:
    try:
        return importlib.import_module("msgpack")
    except ImportError:
        raise SerializationError(
            f"serializer='msgpack' needs the msgpack package: {_MSGPACK_EXTRA}"
        ) from None


def _msgpack_default(value: Any) -> Any:
    """msgpack's fallback: the JSON codec's forms, so @cached revives either codec alike."""
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"type {type(value).__name__} is not serializable")


def _msgpack_unpack(data: bytes, msgpack: ModuleType | None = None) -> Any:
    msgpack = msgpack or _msgpack()
    try:
        payload = memoryview(data)[len(_MSGPACK_MAGIC) :]
        return msgpack.unpackb(payload, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:  # TypeError: a list key
        raise SerializationError(f"stored value is not valid msgpack: {exc}") from None


class MsgpackCodec:
    """msgpack: smaller and faster than JSON for numbers and bytes; floats (NaN and
    infinities too) and bytes round-trip exactly. Other values come back in the JSON
    codec's forms (a model as a dict, a datetime as an ISO string, a tuple as a list)."""

    def __init__(self) -> None:
        self._msgpack = _msgpack()
        self._packb = self._msgpack.packb

    def encode(self, value: Any) -> bytes:
        try:
            payload: bytes = self._packb(value, default=_msgpack_default)
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(
                f"cannot serialize a value of type {type(value).__name__} as msgpack ({exc}); "
                "convert it to dicts/lists/str/numbers first, or opt into serializer='pickle'"
            ) from None
        return _MSGPACK_MAGIC + payload

    def decode(self, data: bytes) -> Any:
        if data.startswith(_MSGPACK_MAGIC):
            return _msgpack_unpack(data, self._msgpack)
        if data.startswith(_FRAME):
            return _decode_framed(self, data)
        return _json_loads(data)  # written before the cache switched to msgpack


# --- signed pickle -------------------------------------------------------------------------


class SignedPickleCodec:
    """Pickle with an HMAC-SHA256 signature: tampered bytes are refused, never unpickled."""

    def __init__(self, signing_key: bytes) -> None:
        if len(signing_key) < 16:
            raise ValueError("signing_key must be at least 16 bytes of secret")
        self._key = signing_key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def encode(self, value: Any) -> bytes:
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            raise  # not the value's fault: the service treats it as a cache fault
        except Exception as exc:  # pickle raises many types; all mean "cannot store this"
            raise SerializationError(
                f"cannot pickle a value of type {type(value).__name__}: {exc}"
            ) from None
        return _PICKLE_MAGIC + self._mac(payload) + payload

    def decode(self, data: bytes) -> Any:
        if data.startswith(_COMPRESSED):
            return self.decode(_decompress(data))  # the signature is checked inside
        if not data.startswith(_PICKLE_MAGIC):
            raise TamperedValueError("stored value is not a signed pickle; refused")
        start = len(_PICKLE_MAGIC)
        mac, payload = data[start : start + _MAC_SIZE], data[start + _MAC_SIZE :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TamperedValueError("stored value failed its signature check; refused")
        return pickle.loads(payload)


def make_codec(
    serializer: str,
    signing_key: str | None,
    *,
    compression: str = "none",
    compression_threshold_bytes: int = 1024,
) -> Codec:
    """The codec named by the `serializer` and `compression` settings."""
    codec: Codec
    if serializer == "json":
        codec = JsonCodec()
    elif serializer == "msgpack":
        try:
            codec = MsgpackCodec()
        except SerializationError as exc:
            raise ConfigurationError(str(exc)) from None
    elif serializer == "pickle" and signing_key:
        codec = SignedPickleCodec(signing_key.encode())
    else:
        raise ConfigurationError(
            f"unknown serializer {serializer!r} or missing signing key; choose one of "
            f"{list(SERIALIZERS)} (pickle needs signing_key)"
        )
    if compression == "none":
        return codec
    return Compressed(codec, compression, compression_threshold_bytes)
