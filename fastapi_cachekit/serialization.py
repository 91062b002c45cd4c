"""Value <-> bytes codecs. JSON (orjson) by default; signed pickle only by explicit opt-in."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import pickle
import re
from decimal import Decimal
from typing import Any, Protocol

import orjson

from .errors import SerializationError, TamperedValueError

__all__ = ["Codec", "JsonCodec", "SignedPickleCodec", "make_codec"]

# Signed pickle payloads start with this marker; JSON never starts with a NUL byte, so each
# codec recognises (and refuses) the other's data instead of misreading it.
_PICKLE_MAGIC = b"\x00ckp1"
_find_null = re.compile(b"null").search
_MAC_SIZE = hashlib.sha256().digest_size


class Codec(Protocol):
    """Turns values into bytes and back."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


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
                "or opt into serializer='pickle'"
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
            if data.startswith(_PICKLE_MAGIC):
                raise SerializationError(
                    "stored value was written with serializer='pickle'; this cache uses JSON"
                ) from None
            raise SerializationError(f"stored value is not valid JSON: {exc}") from None


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
        if not data.startswith(_PICKLE_MAGIC):
            raise TamperedValueError("stored value is not a signed pickle; refused")
        start = len(_PICKLE_MAGIC)
        mac, payload = data[start : start + _MAC_SIZE], data[start + _MAC_SIZE :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            raise TamperedValueError("stored value failed its signature check; refused")
        return pickle.loads(payload)


def make_codec(serializer: str, signing_key: str | None) -> Codec:
    """The codec named by the `serializer` setting."""
    if serializer == "json":
        return JsonCodec()
    if serializer == "pickle" and signing_key:
        return SignedPickleCodec(signing_key.encode())
    raise SerializationError(f"unknown serializer {serializer!r} or missing signing key")
