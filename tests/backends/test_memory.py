"""Memory backend specifics: LRU order, the memory estimate, the sweeper, and a model check."""

from __future__ import annotations

import asyncio
import random
import sys
import tracemalloc

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fastapi_cachekit import CacheService, MemoryBackend
from fastapi_cachekit.backends.memory_entries import entry_size
from fastapi_cachekit.keys import GlobPattern
from tests.clock import FakeClock


async def test_lru_evicts_the_least_recently_used() -> None:
    backend = MemoryBackend(max_items=3)
    for key in "abc":
        await backend.set(key, b"1", ttl=None, namespace=None, tags=())
    await backend.get("a")  # a is now the most recently used
    await backend.set("d", b"1", ttl=None, namespace=None, tags=())
    assert [await backend.exists(k) for k in "abcd"] == [True, False, True, True]


async def test_overwrite_counts_as_use() -> None:
    backend = MemoryBackend(max_items=2)
    await backend.set("a", b"1", ttl=None, namespace=None, tags=())
    await backend.set("b", b"1", ttl=None, namespace=None, tags=())
    await backend.set("a", b"2", ttl=None, namespace=None, tags=())
    await backend.set("c", b"1", ttl=None, namespace=None, tags=())
    assert await backend.get("a") == b"2"
    assert not await backend.exists("b")


async def test_eviction_removes_index_membership() -> None:
    backend = MemoryBackend(max_items=1)
    await backend.set("a", b"1", ttl=None, namespace="ns", tags=("t",))
    await backend.set("b", b"1", ttl=None, namespace=None, tags=())
    assert await backend.invalidate_tags(["t"]) == 0
    assert await backend.invalidate_namespace("ns") == 0
    assert backend._labels.tags == {}
    assert backend._labels.namespaces == {}


def test_past_the_byte_bound_the_least_recently_used_go() -> None:
    entry = entry_size("a", 100, None, ())
    backend = MemoryBackend(max_memory_bytes=3 * entry)
    for key in "abc":
        assert backend.set_nowait(key, b"x" * 100, ttl=None, namespace=None, tags=())
    backend.get_nowait("a")  # a is now the most recently used
    assert backend.set_nowait("d", b"x" * 100, ttl=None, namespace=None, tags=())
    assert list(backend._entries) == ["c", "a", "d"]
    # An overwrite that grows its value evicts too, never the entry written.
    assert backend.set_nowait("a", b"x" * 200, ttl=None, namespace=None, tags=())
    assert list(backend._entries) == ["d", "a"]
    assert backend._bytes <= 3 * entry


async def test_a_value_bigger_than_the_byte_bound_is_not_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = CacheService(MemoryBackend(max_memory_bytes=10_000))
    await cache.set("small", "kept")
    await cache.set("big", "old")
    assert await cache.set("big", "x" * 10_000) is False
    assert await cache.get("big") is None  # the old value did not outlive the write
    assert await cache.get("small") == "kept"
    assert await cache.get_or_set_async("big", lambda: "y" * 10_000) == "y" * 10_000
    stats = await cache.get_stats()
    assert (stats.total_entries, stats.errors) == (1, 2)
    assert "max_memory_bytes=10000" in caplog.text
    await cache.close()


async def test_many_large_values_stay_within_the_byte_bound() -> None:
    megabyte = 1 << 20
    cache = CacheService(MemoryBackend(max_memory_bytes=5 * megabyte))
    for i in range(40):
        assert await cache.set(f"report:{i}", "x" * megabyte)
    stats = await cache.get_stats()
    assert stats.memory_usage_bytes is not None
    assert stats.memory_usage_bytes <= 5 * megabyte
    assert stats.total_entries == 4
    assert await cache.exists("report:39")
    await cache.close()


@pytest.mark.parametrize("bound", [0, -1])
def test_a_byte_bound_below_one_is_refused(bound: int) -> None:
    with pytest.raises(ValueError, match="max_memory_bytes"):
        MemoryBackend(max_memory_bytes=bound)


async def test_memory_estimate_tracks_traced_growth() -> None:
    """The estimate is within ±50% of what tracemalloc sees when 10k mixed entries are set.

    Method: values and keys are built before tracing starts, so the traced growth is what
    the cache itself allocates (encoded bytes, entries, dict slots, index sets).
    """
    rng = random.Random(7)
    values: list[object] = []
    for i in range(10_000):
        kind = i % 4
        if kind == 0:
            values.append({"id": i, "name": "n" * rng.randint(1, 200)})
        elif kind == 1:
            values.append("s" * rng.randint(1, 2000))
        elif kind == 2:
            values.append(list(range(rng.randint(0, 50))))
        else:
            values.append(i * 1.5)
    keys = [f"item:{i}" for i in range(10_000)]
    cache = CacheService(MemoryBackend(max_items=20_000))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i, (key, value) in enumerate(zip(keys, values, strict=True)):
        await cache.set(key, value, namespace=f"ns{i % 3}" if i % 2 else None, tags=["t"])
    traced = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    estimate = (await cache.get_stats()).memory_usage_bytes
    assert estimate is not None
    assert 0.5 * traced <= estimate <= 1.5 * traced, (estimate, traced)
    await cache.close()


async def test_memory_estimate_returns_to_zero() -> None:
    backend = MemoryBackend()
    await backend.set("k", b"x" * 100, ttl=None, namespace="n", tags=("a", "b"))
    await backend.delete("k")
    assert (await backend.stats()).memory_bytes == 0


async def test_background_sweeper_removes_expired_entries() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    cache = CacheService(backend, cleanup_interval=0.01, stats_flush_interval=0.01)
    await cache.set("k", 1, ttl=1)
    clock.advance(2)
    for _ in range(200):  # poll: the sweeper runs on its own schedule
        if "k" not in backend._entries:
            break
        await asyncio.sleep(0.01)
    assert "k" not in backend._entries
    await cache.close()
    assert cache._upkeep.task is not None
    assert cache._upkeep.task.done()


async def test_label_counts_leave_out_expired_entries_without_removing_them() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    await backend.set("old", b"v", ttl=1, namespace="ns", tags=("t",))
    await backend.set("live", b"v", ttl=10, namespace="ns", tags=())
    clock.advance(2)
    counts = await backend.label_counts(10)
    assert counts.namespaces == (("ns", 1),)
    assert counts.tags == ()  # its only entry has expired
    assert await backend.cleanup_expired() == 1  # the poll removed nothing: the sweep does


async def test_overwrite_in_place_renews_the_entry() -> None:
    """An overwrite with the same labels takes the in-place path; the outcome is that of a
    fresh write: new value and times, the most recently used, the estimate of the new size."""
    clock = FakeClock()
    backend = MemoryBackend(max_items=2, clock=clock)
    await backend.set("a", b"1", ttl=10, namespace="ns", tags=("t",))
    entry = backend._entries["a"]
    await backend.set("b", b"1", ttl=None, namespace=None, tags=())
    clock.advance(8)
    await backend.set("a", b"22", ttl=10, namespace="ns", tags=("t",))
    assert backend._entries["a"] is entry  # in place: the indexes were left alone
    assert entry.created_at == clock.now
    clock.advance(8)  # 16 s after the first write, 8 s after the second
    assert await backend.get("a") == b"22"
    await backend.set("c", b"1", ttl=None, namespace=None, tags=())
    assert set(backend._entries) == {"a", "c"}  # b was the least recently used
    fresh = MemoryBackend()
    await fresh.set("a", b"22", ttl=10, namespace="ns", tags=("t",))
    await fresh.set("c", b"1", ttl=None, namespace=None, tags=())
    assert (await backend.stats()).memory_bytes == (await fresh.stats()).memory_bytes
    assert (await backend.stats()).oldest == clock.now - 8  # a, from its second write
    assert await backend.invalidate_tags(["t"]) == 1


async def test_overwrite_with_other_labels_reindexes() -> None:
    backend = MemoryBackend()
    await backend.set("k", b"1", ttl=None, namespace=None, tags=())
    await backend.set("k", b"2", ttl=None, namespace="ns", tags=("t",))
    assert await backend.invalidate_namespace("ns") == 1
    await backend.set("k", b"3", ttl=None, namespace="ns", tags=("t",))
    await backend.set("k", b"4", ttl=None, namespace=None, tags=())
    assert await backend.invalidate_tags(["t"]) == 0
    assert await backend.invalidate_namespace("ns") == 0
    assert await backend.get("k") == b"4"
    assert backend._labels.tags == {}
    assert backend._labels.namespaces == {}


async def test_overwrite_of_an_expired_entry_stores_it_again() -> None:
    clock = FakeClock()
    backend = MemoryBackend(clock=clock)
    await backend.set("k", b"1", ttl=1, namespace=None, tags=())
    clock.advance(2)
    await backend.set("k", b"2", ttl=1, namespace=None, tags=())
    assert await backend.get("k") == b"2"


async def test_entries_without_labels_take_less_memory() -> None:
    backend = MemoryBackend()
    await backend.set("plain", b"1", ttl=None, namespace=None, tags=())
    await backend.set("labelled", b"1", ttl=None, namespace="ns", tags=())
    plain, labelled = backend._entries["plain"], backend._entries["labelled"]
    assert sys.getsizeof(plain) < sys.getsizeof(labelled)
    assert (plain.namespace, plain.tags) == (None, ())
    assert (labelled.namespace, labelled.tags) == ("ns", ())


async def test_sync_methods_answer_as_the_async_ones() -> None:
    """get_nowait/set_nowait are what the service calls; get/set must agree with them."""
    clock = FakeClock()
    sync, coro = MemoryBackend(max_items=3, clock=clock), MemoryBackend(max_items=3, clock=clock)
    token = await sync.fill_token()
    await coro.fill_token()
    writes: list[tuple[str, bytes, float | None, str | None, tuple[str, ...]]] = [
        ("a", b"1", 5.0, None, ()),
        ("b", b"2", None, "ns", ("t",)),
        ("a", b"3", 1.0, None, ()),
        ("c", b"4", None, None, ("t", "u")),
        ("d", b"5", 2.0, "ns", ()),
    ]
    for key, value, ttl, ns, tags in writes:
        assert sync.set_nowait(
            key, value, ttl=ttl, namespace=ns, tags=tags, fill=token
        ) == await coro.set(key, value, ttl=ttl, namespace=ns, tags=tags, fill=token)
    await sync.delete("zz")
    await coro.delete("zz")
    stale_sync = sync.set_nowait("zz", b"x", ttl=None, namespace=None, tags=(), fill=token)
    stale_coro = await coro.set("zz", b"x", ttl=None, namespace=None, tags=(), fill=token)
    assert stale_sync is stale_coro is False
    for step in (0.0, 1.5, 1.0):
        clock.advance(step)
        for key in ("a", "b", "c", "d", "missing"):
            assert sync.get_nowait(key) == await coro.get(key)
        assert list(sync._entries) == list(coro._entries)
    assert await sync.stats() == await coro.stats()


# --- model check: the memory backend against a plain dict ------------------------------

KEYS = st.sampled_from(["a", "b", "c", "ns:a", "ns:b", "x:y"])
TAGS = st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=2, unique=True)
NAMESPACES = st.sampled_from([None, "ns", "x"])
TTLS = st.sampled_from([None, 1.0, 5.0])


class MemoryBackendModel(RuleBasedStateMachine):
    """Random set/get/delete/invalidate/expire sequences agree with a dict model."""

    max_items = 1000
    max_memory_bytes: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1_000_000.0)
        self.backend = MemoryBackend(
            max_items=self.max_items, max_memory_bytes=self.max_memory_bytes, clock=self.clock
        )
        # key -> (value, expires_at, namespace, tags), least recently used first
        self.model: dict[str, tuple[bytes, float | None, str | None, tuple[str, ...]]] = {}

    def run(self, coro: object) -> object:
        return asyncio.run(coro)  # type: ignore[arg-type]

    def live(self) -> dict[str, tuple[bytes, float | None, str | None, tuple[str, ...]]]:
        now = self.clock.now
        return {k: v for k, v in self.model.items() if v[1] is None or v[1] > now}

    @rule(
        key=KEYS,
        value=st.one_of(st.binary(max_size=4), st.binary(min_size=300, max_size=900)),
        ttl=TTLS,
        ns=NAMESPACES,
        tags=TAGS,
        nowait=st.booleans(),
    )
    def set(
        self,
        key: str,
        value: bytes,
        ttl: float | None,
        ns: str | None,
        tags: list[str],
        nowait: bool,
    ) -> None:
        if nowait:
            stored = self.backend.set_nowait(key, value, ttl=ttl, namespace=ns, tags=tags)
        else:
            stored = self.run(self.backend.set(key, value, ttl=ttl, namespace=ns, tags=tags))
        bound = self.max_memory_bytes or float("inf")
        self.model.pop(key, None)  # a write makes the key the most recently used
        # A value too big for the byte bound on its own is refused (and the old one gone).
        assert stored is (entry_size(key, len(value), ns, tuple(tags)) <= bound)
        if stored:
            expires = None if ttl is None else self.clock.now + ttl
            self.model[key] = (value, expires, ns, tuple(tags))
        while len(self.model) > self.max_items or self.model_bytes() > bound:
            del self.model[next(iter(self.model))]

    def model_bytes(self) -> int:
        return sum(entry_size(k, len(v[0]), v[2], v[3]) for k, v in self.model.items())

    @rule(key=KEYS, nowait=st.booleans())
    def get(self, key: str, nowait: bool) -> None:
        expected = self.live().get(key)
        found = self.backend.get_nowait(key) if nowait else self.run(self.backend.get(key))
        assert found == (expected[0] if expected else None)
        if expected is None:
            self.model.pop(key, None)  # an expired entry is removed when it is read
        else:
            self.model[key] = self.model.pop(key)  # a hit makes it the most recently used

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        expected = key in self.live()
        assert self.run(self.backend.delete(key)) is expected
        self.model.pop(key, None)

    @rule(ns=st.sampled_from(["ns", "x"]))
    def invalidate_namespace(self, ns: str) -> None:
        doomed = {k for k, v in self.live().items() if v[2] == ns}
        assert self.run(self.backend.invalidate_namespace(ns)) == len(doomed)
        self.model = {k: v for k, v in self.model.items() if v[2] != ns}

    @rule(tags=st.lists(st.sampled_from(["t1", "t2", "t3"]), min_size=1, max_size=2))
    def invalidate_tags(self, tags: list[str]) -> None:
        doomed = {k for k, v in self.live().items() if set(v[3]) & set(tags)}
        assert self.run(self.backend.invalidate_tags(tags)) == len(doomed)
        self.model = {k: v for k, v in self.model.items() if not set(v[3]) & set(tags)}

    @rule(pattern=st.sampled_from(["ns:*", "?", "*", "[ab]", "x*"]))
    def invalidate_pattern(self, pattern: str) -> None:
        compiled = GlobPattern.compile(pattern)
        doomed = {k for k in self.live() if compiled.matches(k)}
        assert self.run(self.backend.invalidate_pattern(compiled, None)) == len(doomed)
        self.model = {k: v for k, v in self.model.items() if not compiled.matches(k)}

    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: bool(self.model))
    @rule()
    def cleanup(self) -> None:
        expired = len(self.model) - len(self.live())
        assert self.run(self.backend.cleanup_expired()) == expired
        self.model = self.live()

    @invariant()
    def same_keys_stored_in_lru_order(self) -> None:
        # Looks without reading, since a read removes an expired entry.
        assert list(self.backend._entries) == list(self.model)

    @invariant()
    def bytes_within_the_bound(self) -> None:
        assert self.backend._bytes <= (self.max_memory_bytes or float("inf"))

    @invariant()
    def estimate_is_the_sum_of_the_entries(self) -> None:
        # Overwrites in place adjust the running total; it must equal a recount.
        entries = self.backend._entries
        assert self.backend._bytes == sum(entry.size(key) for key, entry in entries.items())


MemoryBackendModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestMemoryBackendModel = MemoryBackendModel.TestCase


class SmallMemoryBackendModel(MemoryBackendModel):
    """The same, with room for 3 of the 6 keys: LRU eviction in the mix."""

    max_items = 3


SmallMemoryBackendModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestSmallMemoryBackendModel = SmallMemoryBackendModel.TestCase


class ByteBoundedMemoryBackendModel(MemoryBackendModel):
    """The same, bounded to 1,500 bytes: room for two to five entries, and values too big."""

    max_memory_bytes = 1500


ByteBoundedMemoryBackendModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestByteBoundedMemoryBackendModel = ByteBoundedMemoryBackendModel.TestCase
