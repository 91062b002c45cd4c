"""Bad input raises a clear error and leaves the cache unchanged."""

from __future__ import annotations

import pytest

from fastapi_cachekit import (
    CacheError,
    CacheService,
    InvalidKeyError,
    SerializationError,
    cached,
)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "must not be empty"),
        (123, "must be a str"),
        (None, "must be a str"),
        ("a\nb", "control character"),
        ("a\x00b", "control character"),
        ("k" * 1025, "limit is 1024"),
        ("a\ud800b", "lone surrogate"),
        ("\udfff", "lone surrogate"),
    ],
)
async def test_bad_keys(cache: CacheService, key: object, message: str) -> None:
    with pytest.raises(InvalidKeyError, match=message):
        await cache.set(key, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match=message):
        await cache.get(key)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match=message):
        await cache.delete(key)  # type: ignore[arg-type]
    assert (await cache.get_stats()).total_entries == 0


async def test_bad_key_errors_are_value_errors_and_cache_errors(cache: CacheService) -> None:
    with pytest.raises(ValueError, match="empty"):
        await cache.get("")
    with pytest.raises(CacheError):
        await cache.get("")


@pytest.mark.parametrize("namespace", ["", 1, "a\tb", "tenant:\ud800"])
async def test_bad_namespaces(cache: CacheService, namespace: object) -> None:
    with pytest.raises(InvalidKeyError, match="namespace"):
        await cache.set("k", 1, namespace=namespace)  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError, match="namespace"):
        await cache.invalidate_namespace(namespace)  # type: ignore[arg-type]


@pytest.mark.parametrize("tags", [[""], [1], ["ok", None], ["ok", "\udc80"]])
async def test_bad_tags(cache: CacheService, tags: list[object]) -> None:
    with pytest.raises(InvalidKeyError, match="tag"):
        await cache.set("k", 1, tags=tags)  # type: ignore[arg-type]
    assert not await cache.exists("k")


async def test_unserializable_value_names_the_type_and_stores_nothing(
    cache: CacheService,
) -> None:
    await cache.set("k", "old")
    with pytest.raises(SerializationError, match="object"):
        await cache.set("k", object())
    assert await cache.get("k") == "old"


async def test_non_callable_factory(cache: CacheService) -> None:
    with pytest.raises(TypeError, match="lambda"):
        await cache.get_or_set_async("k", 42)  # type: ignore[arg-type]
    assert not await cache.exists("k")


# NaN and the infinities have no JSON form: orjson writes null, which would come back as None.
_NON_FINITE = [float("nan"), float("inf"), -float("inf"), [1.0, float("nan")], {"a": {"b": 1e309}}]


@pytest.mark.parametrize("value", _NON_FINITE, ids=repr)
async def test_non_finite_floats_are_refused_and_store_nothing(
    cache: CacheService, value: object
) -> None:
    await cache.set("k", "old")
    with pytest.raises(SerializationError, match="NaN or infinity"):
        await cache.set("k", value)
    assert await cache.get("k") == "old"
    with pytest.raises(SerializationError, match="NaN or infinity"):
        await cache.get_or_set_async("fresh", lambda: value)
    assert not await cache.exists("fresh")


async def test_cached_function_returning_nan_raises_every_time(cache: CacheService) -> None:
    @cached(cache)
    async def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    for _ in range(2):  # the second call must not find a stored null
        with pytest.raises(SerializationError, match="NaN or infinity"):
            await ratio(1.0, 0.0)
    assert await ratio(1.0, 2.0) == 0.5
