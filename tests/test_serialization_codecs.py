"""msgpack and compression: exact floats and bytes, values that say how to read them, and
settings that change without making stored values unreadable."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import uuid
import zlib
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from fastapi_cachekit import (
    CacheService,
    Codec,
    ConfigurationError,
    MemoryBackend,
    SerializationError,
    TamperedValueError,
    create_cache,
)
from fastapi_cachekit.serialization import (
    Compressed,
    JsonCodec,
    MsgpackCodec,
    SignedPickleCodec,
    make_codec,
)

BIG = {"rows": [{"id": n, "name": f"product {n}", "tags": ["a", "b"]} for n in range(200)]}


class User(BaseModel):
    id: int
    joined: datetime
    score: float = 0.0


@dataclasses.dataclass
class Point:
    x: float
    y: float


# --- msgpack -------------------------------------------------------------------------------


def test_msgpack_round_trips_floats_and_bytes_exactly() -> None:
    value = {"nan": math.nan, "inf": -math.inf, "third": 1 / 3, "raw": b"\x00\xff", 7: [1]}
    back = MsgpackCodec().decode(MsgpackCodec().encode(value))
    assert math.isnan(back["nan"])
    assert back["inf"] == -math.inf
    assert back["third"] == 1 / 3
    assert back["raw"] == b"\x00\xff"
    assert back[7] == [1]  # integer keys stay integers


def test_msgpack_gives_the_json_codecs_forms_of_other_values() -> None:
    for value in [Point(1.5, 2.0), uuid.UUID(int=1), Decimal("1.10"), {1, 2}]:
        assert MsgpackCodec().decode(MsgpackCodec().encode(value)) == JsonCodec().decode(
            JsonCodec().encode(value)
        )


def test_msgpack_values_revive_as_their_model() -> None:
    user = User(id=1, joined=datetime(2024, 5, 1, tzinfo=timezone.utc), score=math.inf)
    assert User.model_validate(MsgpackCodec().decode(MsgpackCodec().encode(user))) == user


def test_msgpack_refuses_what_it_cannot_store_by_type() -> None:
    with pytest.raises(SerializationError, match=r"type object as msgpack.*pickle"):
        MsgpackCodec().encode(object())
    with pytest.raises(SerializationError, match="msgpack"):
        MsgpackCodec().encode(2**70)


def test_json_and_msgpack_read_each_others_values() -> None:
    assert MsgpackCodec().decode(JsonCodec().encode(BIG)) == BIG
    assert JsonCodec().decode(MsgpackCodec().encode(BIG)) == BIG


def test_neither_json_nor_msgpack_unpickles() -> None:
    pickled = SignedPickleCodec(b"k" * 32).encode(1)
    for codec in (JsonCodec(), MsgpackCodec()):
        with pytest.raises(SerializationError, match="does not unpickle"):
            codec.decode(pickled)
    with pytest.raises(TamperedValueError):
        SignedPickleCodec(b"k" * 32).decode(MsgpackCodec().encode(1))


def test_msgpack_without_its_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    data = MsgpackCodec().encode(1)
    monkeypatch.setitem(sys.modules, "msgpack", None)  # what an install without it gives
    with pytest.raises(ConfigurationError, match=r"fastapi-cache-kit\[msgpack\]"):
        create_cache(serializer="msgpack")
    with pytest.raises(SerializationError, match=r"fastapi-cache-kit\[msgpack\]"):
        JsonCodec().decode(data)


# --- compression ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codec", [JsonCodec(), MsgpackCodec(), SignedPickleCodec(b"k" * 32)], ids=type
)
def test_values_above_the_threshold_are_compressed_and_read_back(codec: Codec) -> None:
    compressed = Compressed(codec, "zlib", threshold=1024)
    data = compressed.encode(BIG)
    assert data.startswith(b"\x00ckz1")  # the algorithm travels with the value
    assert len(data) < len(codec.encode(BIG)) / 4
    assert compressed.decode(data) == BIG
    assert compressed.encode([1]) == codec.encode([1])  # below the threshold: as before


def test_incompressible_values_are_stored_plain() -> None:
    noise = os.urandom(4096)
    codec = Compressed(MsgpackCodec(), "zlib", threshold=0)
    assert codec.encode(noise) == MsgpackCodec().encode(noise)


def test_a_compressed_pickle_still_checks_its_signature() -> None:
    writer = Compressed(SignedPickleCodec(b"attacker" * 4), "zlib", threshold=0)
    with pytest.raises(TamperedValueError, match="signature"):
        SignedPickleCodec(b"k" * 32).decode(writer.encode(BIG))


@pytest.mark.parametrize(
    "data",
    [
        b"\x00ckz9" + b"x" * 10,
        b"\x00ckz1not zlib",
        b"\x00ckz1" + zlib.compress(b"\x00ckz1" + zlib.compress(b"1")),  # twice
        b"\x00ckm1" + b"\x81\x91\x01\x02",  # msgpack {[1]: 2}: a key Python cannot hash
    ],
)
def test_unreadable_framed_values_are_refused(data: bytes) -> None:
    for codec in (JsonCodec(), MsgpackCodec()):
        with pytest.raises(SerializationError, match=r"compress|msgpack"):
            codec.decode(data)


def test_an_unknown_compression_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="compression"):
        create_cache(compression="lz4")
    with pytest.raises(ConfigurationError, match="unknown compression 'lz4'"):
        make_codec("json", None, compression="lz4")


# --- settings that change between deploys ---------------------------------------------------

SETTINGS: list[dict[str, Any]] = [
    {"serializer": "json"},
    {"serializer": "json", "compression": "zlib", "compression_threshold_bytes": 0},
    {"serializer": "msgpack"},
    {"serializer": "msgpack", "compression": "zlib"},
]


@pytest.mark.parametrize("before", SETTINGS, ids=str)
@pytest.mark.parametrize("after", SETTINGS, ids=str)
async def test_values_stay_readable_when_codec_settings_change(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    backend = MemoryBackend()
    old = CacheService(backend, codec=make_codec(signing_key=None, **before))
    new = CacheService(backend, codec=make_codec(signing_key=None, **after))
    await old.set("big", BIG)
    await old.set("small", [1.5])
    assert await new.get("big") == BIG
    assert await new.get("small") == [1.5]
    assert (await new.get_stats()).errors == 0


@pytest.mark.redis
async def test_turning_compression_on_and_off_on_redis(redis_url: str, clean_redis: object) -> None:
    common: dict[str, Any] = {"backend": "redis", "redis_url": redis_url, "key_prefix": "codecs"}
    plain = create_cache(**common)
    zipped = create_cache(**common, compression="zlib", compression_threshold_bytes=100)
    await plain.set("written-plain", BIG)
    await zipped.set("written-zipped", BIG)
    raw = await plain.get_raw("written-zipped")
    assert raw is not None
    assert raw.startswith(b"\x00ckz1")
    assert await zipped.get("written-plain") == BIG
    assert await plain.get("written-zipped") == BIG
    for cache in (plain, zipped):
        await cache.close()


@pytest.mark.redis
async def test_the_codec_benchmark_runs(redis_url: str, clean_redis: object) -> None:
    from benchmarks.codecs import measure

    rows = await measure(redis_url, rounds=3)
    assert [row.split("|")[1].strip() for row in rows] == [
        "json", "json + zlib", "msgpack", "msgpack + zlib", "pickle", "pickle + zlib",
    ]  # fmt: skip
