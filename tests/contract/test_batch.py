"""get_many / set_many / delete_many mean what the single-key calls mean, on every backend:
TTL, namespaces, tags, fill tokens, statistics, bad input, duplicates and empty input."""

from __future__ import annotations

import pytest

from fastapi_cachekit import CacheService, InvalidKeyError, InvalidTTLError, SerializationError
from fastapi_cachekit.backends.base import BatchBackend
from tests.clock import FakeClock
from tests.contract.conftest import MakeBackend


async def test_every_backend_has_native_batches(make_backend: MakeBackend) -> None:
    backend = make_backend()
    assert isinstance(backend, BatchBackend)
    await backend.close()


async def test_get_many_returns_the_hits_by_key(cache: CacheService) -> None:
    await cache.set("a", {"n": 1})
    await cache.set("b", None)  # a cached None is a hit, told apart from a miss
    assert await cache.get_many(["a", "b", "absent"]) == {"a": {"n": 1}, "b": None}


async def test_set_many_stores_what_single_gets_read(cache: CacheService) -> None:
    assert await cache.set_many({"a": 1, "b": [2], "c": "three"}) == 3
    assert [await cache.get(key) for key in ("a", "b", "c")] == [1, [2], "three"]
    assert await cache.set_many({"a": "new"}) == 1  # an overwrite, as `set`
    assert await cache.get("a") == "new"


async def test_many_keys_across_every_shard(cache: CacheService) -> None:
    """On a cluster, 300 keys fall in every shard, on every master: grouped per slot."""
    values = {f"item:{i}": i for i in range(300)}
    assert await cache.set_many(values) == 300
    assert await cache.get_many([*values, "absent"]) == values
    assert await cache.delete_many(list(values)[::2]) == 150
    assert await cache.get_many(values) == {k: v for k, v in values.items() if v % 2}


async def test_ttl_follows_the_clock(cache: CacheService, clock: FakeClock) -> None:
    await cache.set_many({"a": 1, "b": 2}, ttl=10)
    await cache.set_many({"forever": 3}, ttl=None)
    clock.advance(9.9)
    assert await cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    clock.advance(0.1)
    assert await cache.get_many(["a", "b", "forever"]) == {"forever": 3}
    assert await cache.delete_many(["a", "b"]) == 0  # expired: nothing live removed


async def test_namespace_and_tags_index_the_batch(cache: CacheService) -> None:
    await cache.set_many({"1": "ada", "2": "bob"}, namespace="users", tags=["people"])
    await cache.set_many({"1": "other"})  # the same key without the namespace: another entry
    assert await cache.get("1", namespace="users") == "ada"
    assert await cache.get_many(["1", "2"], namespace="users") == {"1": "ada", "2": "bob"}
    assert await cache.invalidate_tags(["people"]) == 2
    assert await cache.get_many(["1", "2"], namespace="users") == {}
    await cache.set_many({"1": "ada"}, namespace="users")
    assert await cache.invalidate_namespace("users") == 1
    assert await cache.get_many(["1"]) == {"1": "other"}


async def test_an_overwrite_leaves_the_old_tags(cache: CacheService) -> None:
    await cache.set("k", 1, tags=["old"])
    await cache.set_many({"k": 2}, tags=["new"])
    assert await cache.invalidate_tags(["old"]) == 0
    assert await cache.get("k") == 2
    assert await cache.invalidate_tags(["new"]) == 1


async def test_a_write_wider_than_one_script_call(cache: CacheService) -> None:
    tags = [f"t{i}" for i in range(70)]  # more than one Redis SET call indexes
    assert await cache.set_many({"a": 1, "b": 2}, tags=tags) == 2
    assert await cache.invalidate_tags(["t69"]) == 2


async def test_a_fill_token_refuses_what_was_invalidated_since(cache: CacheService) -> None:
    await cache.set_many({"a": 0, "b": 0, "c": 0}, tags=["t"])
    token = await cache.fill_token()
    await cache.delete("b")  # after the token: b's computed value may be stale
    assert await cache.set_many({"a": 1, "b": 1}, fill=token) == 1
    assert await cache.get_many(["a", "b"]) == {"a": 1}
    await cache.invalidate_tags(["t"])
    assert await cache.set_many({"c": 1, "d": 1}, tags=["t"], fill=token) == 0
    assert await cache.get_many(["c", "d"]) == {}


async def test_hits_and_misses_are_counted_per_distinct_key(cache: CacheService) -> None:
    await cache.set_many({"a": 1, "b": 2})
    assert await cache.get_many(["a", "b", "c", "a", "c"]) == {"a": 1, "b": 2}
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (2, 1)
    assert stats.total_entries == 2


async def test_delete_many_counts_live_entries_once(cache: CacheService) -> None:
    await cache.set_many({"a": 1, "b": 2, "c": 3})
    assert await cache.delete_many(["a", "b", "a", "absent"]) == 2
    assert await cache.get_many(["a", "b", "c"]) == {"c": 3}


async def test_empty_input_does_nothing(cache: CacheService) -> None:
    assert await cache.get_many([]) == {}
    assert await cache.set_many({}) == 0
    assert await cache.delete_many(iter(())) == 0
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses, stats.errors) == (0, 0, 0)


async def test_bad_input_raises_before_anything_changes(cache: CacheService) -> None:
    await cache.set("kept", 0)
    with pytest.raises(InvalidKeyError, match="must not be empty"):
        await cache.set_many({"a": 1, "": 2})
    with pytest.raises(SerializationError):
        await cache.set_many({"a": 1, "b": object()})
    with pytest.raises(InvalidKeyError, match="tags must be a list"):
        await cache.set_many({"a": 1}, tags="t")  # type: ignore[arg-type]
    with pytest.raises(InvalidTTLError):
        await cache.set_many({"a": 1}, ttl=-1)
    with pytest.raises(InvalidKeyError, match="control character"):
        await cache.delete_many(["kept", "bad\n"])
    with pytest.raises(InvalidKeyError):
        await cache.get_many(["kept", "x" * 2000])
    with pytest.raises(TypeError, match="wrap a single key in a list"):
        await cache.get_many("kept")
    with pytest.raises(TypeError, match="mapping of key -> value"):
        await cache.set_many([("a", 1)])  # type: ignore[arg-type]
    assert await cache.get_many(["a", "b", "kept"]) == {"kept": 0}


async def test_the_off_switch_skips_reads_and_writes_but_not_deletes(
    cache: CacheService,
) -> None:
    await cache.set_many({"a": 1, "b": 2})
    with cache.disabled():
        assert await cache.get_many(["a", "b"]) == {}
        assert await cache.set_many({"c": 3}) == 0
        assert await cache.delete_many(["a"]) == 1
    assert await cache.get_many(["a", "b", "c"]) == {"b": 2}
    stats = await cache.get_stats()
    assert stats.bypasses == 3  # two reads and one write, one per key
