"""Codecs: JSON by default, signed pickle by opt-in, tampering refused."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from fastapi_cachekit import (
    CacheService,
    MemoryBackend,
    SerializationError,
    TamperedValueError,
    create_cache,
)
from fastapi_cachekit.serialization import JsonCodec, SignedPickleCodec, _json_default


class Color(enum.Enum):
    RED = "red"


class User(BaseModel):
    id: int
    name: str


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.mark.parametrize(
    ("value", "json_form"),
    [
        ("s", "s"),
        (1, 1),
        (1.5, 1.5),
        (True, True),
        (None, None),
        ([1, "a"], [1, "a"]),
        ({"a": {"b": [1]}}, {"a": {"b": [1]}}),
        (datetime(2024, 5, 1, 12, tzinfo=timezone.utc), "2024-05-01T12:00:00+00:00"),
        (date(2024, 5, 1), "2024-05-01"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Decimal("10.25"), "10.25"),
        (Color.RED, "red"),
        (Point(1, 2), {"x": 1, "y": 2}),
        (User(id=1, name="Ada"), {"id": 1, "name": "Ada"}),
    ],
)
def test_json_round_trips_to_the_json_form(value: object, json_form: object) -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode(value)) == json_form


def test_json_refuses_unserializable_values_by_type() -> None:
    with pytest.raises(SerializationError, match="type object"):
        JsonCodec().encode(object())


@dataclasses.dataclass
class Reading:
    value: float


class Measure(BaseModel):
    value: float


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("-inf"),
        (1, float("inf")),
        {"a": [None, {"b": float("nan")}]},
        frozenset({float("nan")}),
        Reading(float("nan")),
        Measure(value=float("inf")),
    ],
    ids=repr,
)
def test_json_refuses_nan_and_infinity_wherever_they_are(value: object) -> None:
    with pytest.raises(SerializationError, match="NaN or infinity"):
        JsonCodec().encode(value)


def test_json_keeps_nulls_and_finite_floats() -> None:
    value = {"a": None, "b": [1.5, None, -0.0], "c": Reading(2.5), "d": Measure(value=1e308)}
    assert JsonCodec().decode(JsonCodec().encode(value)) == {
        "a": None,
        "b": [1.5, None, -0.0],
        "c": {"value": 2.5},
        "d": {"value": 1e308},
    }


def test_pickle_round_trips_python_objects() -> None:
    codec = SignedPickleCodec(b"k" * 32)
    value = {"point": Point(1, 2), "when": date(2024, 1, 1), "set": {1, 2}}
    assert codec.decode(codec.encode(value)) == value


def test_tampered_pickle_is_refused() -> None:
    codec = SignedPickleCodec(b"k" * 32)
    data = bytearray(codec.encode({"a": 1}))
    data[-2] ^= 0xFF
    with pytest.raises(TamperedValueError):
        codec.decode(bytes(data))
    with pytest.raises(TamperedValueError):
        SignedPickleCodec(b"x" * 32).decode(codec.encode({"a": 1}))


def test_codecs_refuse_each_others_data() -> None:
    pickled = SignedPickleCodec(b"k" * 32).encode(1)
    with pytest.raises(SerializationError, match="pickle"):
        JsonCodec().decode(pickled)
    with pytest.raises(TamperedValueError):
        SignedPickleCodec(b"k" * 32).decode(JsonCodec().encode(1))


async def test_tampered_value_in_the_store_is_a_logged_miss(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBackend()
    cache = CacheService(backend, codec=SignedPickleCodec(b"secret" * 4))
    await cache.set("k", {"a": 1})
    forged = SignedPickleCodec(b"attacker" * 4).encode({"a": "evil"})
    await backend.set("k", forged, ttl=None, namespace=None, tags=())
    assert await cache.get("k") is None
    stats = await cache.get_stats()
    assert stats.errors == 1
    assert stats.total_misses == 1
    assert "signature" in caplog.text
    await cache.close()


async def test_pickle_is_opt_in_through_settings() -> None:
    cache = create_cache(serializer="pickle", signing_key="s" * 32)
    await cache.set("k", {1, 2})
    assert await cache.get("k") == {1, 2}
    await cache.close()


# --- the encoder's fast path (a call without options first) must not change any bytes -----

_OLD_ENCODE_OPTIONS = JsonCodec._OPTIONS


def _options_call(value: object) -> bytes | str:
    """What encode() did before it tried a call without options first: the bytes, or the
    error text it put into its SerializationError."""
    try:
        return orjson.dumps(value, default=_json_default, option=_OLD_ENCODE_OPTIONS)
    except TypeError as exc:
        return f"({exc})"


def _assert_same_outcome(value: object) -> None:
    expected = _options_call(value)
    if isinstance(expected, bytes):
        assert JsonCodec().encode(value) == expected
    else:
        with pytest.raises(SerializationError) as raised:
            JsonCodec().encode(value)
        assert expected in str(raised.value)


class Label(str):
    pass


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.datetimes(),
    st.uuids(),
    st.sampled_from([Color.RED, Point(1, 2), User(id=1, name="Ada"), frozenset({1})]),
)
_KEYS = st.one_of(st.text(max_size=4), st.builds(Label, st.text(max_size=4)))
_NON_STR_KEYS = st.one_of(_KEYS, st.integers(), st.booleans(), st.none(), st.dates())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_KEYS, inner, max_size=4),
        st.dictionaries(_NON_STR_KEYS, inner, max_size=3),
    ),
    max_leaves=12,
)


@given(_VALUES)
def test_json_encode_matches_the_call_with_options(value: object) -> None:
    _assert_same_outcome(value)


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {None: 1, "x": [{2.5: True}]},
        {date(2024, 5, 1): 1},
        [{Color.RED: 1}],
        {2**64: 1},
        {"a": object()},
    ],
)
def test_json_non_str_keys_take_the_options_call(value: object) -> None:
    _assert_same_outcome(value)
