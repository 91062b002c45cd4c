"""Memory backend specifics: LRU order, the memory estimate, the sweeper, and a model check."""

from __future__ import annotations

import asyncio
import random
import tracemalloc

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fastapi_cachekit import CacheService, MemoryBackend
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
    assert backend._tags == {}
    assert backend._namespaces == {}


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
    assert cache._maintenance is not None
    assert cache._maintenance.done()


# --- model check: the memory backend against a plain dict ------------------------------

KEYS = st.sampled_from(["a", "b", "c", "ns:a", "ns:b", "x:y"])
TAGS = st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=2, unique=True)
NAMESPACES = st.sampled_from([None, "ns", "x"])
TTLS = st.sampled_from([None, 1.0, 5.0])


class MemoryBackendModel(RuleBasedStateMachine):
    """Random set/get/delete/invalidate/expire sequences agree with a dict model."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1_000_000.0)
        self.backend = MemoryBackend(max_items=1000, clock=self.clock)
        # key -> (value, expires_at, namespace, tags)
        self.model: dict[str, tuple[bytes, float | None, str | None, tuple[str, ...]]] = {}

    def run(self, coro: object) -> object:
        return asyncio.run(coro)  # type: ignore[arg-type]

    def live(self) -> dict[str, tuple[bytes, float | None, str | None, tuple[str, ...]]]:
        now = self.clock.now
        return {k: v for k, v in self.model.items() if v[1] is None or v[1] > now}

    @rule(key=KEYS, value=st.binary(max_size=4), ttl=TTLS, ns=NAMESPACES, tags=TAGS)
    def set(
        self, key: str, value: bytes, ttl: float | None, ns: str | None, tags: list[str]
    ) -> None:
        self.run(self.backend.set(key, value, ttl=ttl, namespace=ns, tags=tags))
        expires = None if ttl is None else self.clock.now + ttl
        self.model[key] = (value, expires, ns, tuple(tags))

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        expected = self.live().get(key)
        assert self.run(self.backend.get(key)) == (expected[0] if expected else None)
        if expected is None:
            self.model.pop(key, None)  # an expired entry is removed when it is read

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
    def same_keys_stored(self) -> None:
        # Looks without reading, since a read removes an expired entry.
        assert set(self.backend._entries) == set(self.model)


MemoryBackendModel.TestCase.settings = settings(max_examples=60, stateful_step_count=30)
TestMemoryBackendModel = MemoryBackendModel.TestCase
