"""Early refresh (`refresh_ahead`): a hit near expiry is served at once and recomputed once, in
the background, through the same fill as a miss; on memory, Redis and hybrid backends."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from fastapi_cachekit import CacheService, cached
from fastapi_cachekit.backends.base import TTLReads
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.events import CacheEvent
from fastapi_cachekit.testing import CacheRecorder, ManualClock, make_test_cache
from tests.backend_kinds import backend_factory
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

KINDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("hybrid", marks=pytest.mark.redis),
]
_prefixes = itertools.count()


class Source:
    """A data source the test holds and releases: call n answers f"v{n}" once the gate is
    open; `entered` is set when a call has started (its fill token is taken by then)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.failing = False
        self.cancelled = False

    async def __call__(self) -> str:
        self.calls += 1
        call = self.calls
        self.entered.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.failing:
            raise RuntimeError("the data source is down")
        return f"v{call}"

    def hold(self) -> None:
        self.gate.clear()
        self.entered.clear()

    async def started(self) -> None:
        """Until a call has started; a hang guard fails the test if none does."""
        await asyncio.wait_for(self.entered.wait(), 10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=KINDS)
async def cache(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[CacheService]:
    service = CacheService(backend_factory(request.param, request)(clock))
    yield service
    await service.close()


def hot_key(cache: CacheService, source: Source) -> Callable[[], Awaitable[Any]]:
    """A caller of the hot key: TTL 10 s, refreshed in its last 2 s."""
    return lambda: cache.get_or_set_async("hot", source, ttl=10, refresh_ahead=2)


def fills() -> set[asyncio.Task[Any]]:
    """The fills running in the background (the refreshes, once their callers returned)."""
    return {t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Fill.run"}  # type: ignore[union-attr]


async def refreshes_landed() -> None:
    """Until the refreshes in the background have ended; there must be one."""
    running = fills()
    assert running, "no refresh is running"
    await asyncio.gather(*running, return_exceptions=True)


# --- the backends' port -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_every_backend_says_how_long_an_entry_has_left(
    kind: str, request: pytest.FixtureRequest, clock: FakeClock
) -> None:
    backend = backend_factory(kind, request)(clock)
    assert isinstance(backend, TTLReads)
    await backend.set("k", b"v", ttl=10, namespace=None, tags=())
    await backend.set("forever", b"f", ttl=None, namespace=None, tags=())
    clock.advance(3)
    assert await backend.get_with_ttl("k") == (b"v", pytest.approx(7, abs=1e-3))
    assert await backend.get_with_ttl("forever") == (b"f", None)
    assert await backend.get_with_ttl("absent") is None
    clock.advance(7)
    assert await backend.get_with_ttl("k") is None
    await backend.close()


# --- the hot key --------------------------------------------------------------------------


async def test_a_hot_key_in_its_window_is_served_while_one_refresh_runs(
    cache: CacheService, clock: FakeClock
) -> None:
    source = Source()
    get = hot_key(cache, source)
    assert await get() == "v1"
    clock.advance(8.5)  # 1.5 s left: inside the 2 s window
    source.hold()
    # A hang guard (asyncio.timeout is 3.11+): every caller must return while the source is held.
    served = await asyncio.wait_for(asyncio.gather(*(get() for _ in range(50))), 30)
    assert served == ["v1"] * 50
    await source.started()
    assert source.calls == 2  # one refresh for the 50 callers
    source.gate.set()
    clock.advance(2)  # the stored v1 has expired by now
    assert await get() == "v2"  # joined the refresh, or read what it stored
    assert source.calls == 2
    assert await cache.get("hot") == "v2"


async def test_outside_the_window_nothing_is_refreshed(
    cache: CacheService, clock: FakeClock
) -> None:
    source = Source()
    get = hot_key(cache, source)
    await get()
    clock.advance(7.5)  # 2.5 s left
    assert await get() == "v1"
    assert fills() == set()
    assert source.calls == 1


async def test_an_invalidation_during_the_refresh_keeps_its_result_out(
    cache: CacheService, clock: FakeClock
) -> None:
    source = Source()
    get = hot_key(cache, source)
    await get()
    clock.advance(8.5)
    source.hold()
    assert await get() == "v1"
    await source.started()  # the refresh has its fill token
    await cache.delete("hot")
    source.gate.set()
    await refreshes_landed()
    assert await cache.get("hot") is None  # v2 was computed before the delete: not stored
    assert await get() == "v3"  # a fresh fill, not the detached refresh


# --- failures -----------------------------------------------------------------------------


async def test_a_failing_refresh_never_reaches_callers_and_is_not_retried_on_every_hit(
    cache: CacheService, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    source = Source()
    get = hot_key(cache, source)
    await get()
    clock.advance(8.5)
    source.failing = True
    with caplog.at_level(logging.WARNING, "fastapi_cachekit.refresh"):
        assert await get() == "v1"
        await refreshes_landed()
    assert "early refresh of 'hot' failed" in caplog.text
    assert await get() == "v1"  # the stored value is served, and not refreshed again
    assert fills() == set()
    assert source.calls == 2
    clock.advance(2)  # once it has expired, a caller computes it again
    source.failing = False
    assert await get() == "v3"
    clock.advance(8.5)  # and the new value is refreshed ahead again
    assert await get() == "v3"
    await refreshes_landed()
    assert await get() == "v4"


@pytest.mark.redis
async def test_a_refresh_whose_write_fails_is_a_counted_fault(
    redis_server: RedisServer, clock: FakeClock
) -> None:
    cache = CacheService(RedisBackend(redis_server.url, clock=clock, breaker_max_backoff=0.05))
    source = Source()
    get = hot_key(cache, source)
    try:
        await get()
        clock.advance(8.5)
        source.hold()
        assert await get() == "v1"
        await source.started()
        redis_server.stop()
        source.gate.set()
        await refreshes_landed()  # its write failed: counted, not raised
        assert (await cache.get_stats()).errors >= 1
        assert await get() == "v3"  # Redis down: a miss, the factory's value (fail open)
    finally:
        redis_server.start()
        await cache.close()


# --- the off switch, close, other processes ------------------------------------------------


async def a_held_refresh(clock: FakeClock) -> tuple[CacheService, Source, Any]:
    """A memory cache whose hot key has a refresh started and held in its factory."""
    cache = CacheService(MemoryBackend(clock=clock))
    source = Source()
    get = hot_key(cache, source)
    await get()
    clock.advance(8.5)
    source.hold()
    assert await get() == "v1"
    await source.started()
    return cache, source, get


async def test_a_refresh_stores_nothing_while_the_cache_is_off(clock: FakeClock) -> None:
    cache, source, get = await a_held_refresh(clock)
    with cache.disabled():
        source.gate.set()
        await refreshes_landed()
        assert await get() == "v3"  # off: the factory runs, and no refresh starts
        assert fills() == set()
    assert await cache.get("hot") == "v1"
    await cache.close()


async def test_close_cancels_a_refresh_in_progress(clock: FakeClock) -> None:
    cache, source, _ = await a_held_refresh(clock)
    await cache.close()
    assert source.cancelled
    assert fills() == set()


@pytest.mark.redis
async def test_a_caller_joined_to_a_refresh_that_close_cancels_runs_its_own_factory(
    clock: FakeClock,
) -> None:
    joined = asyncio.Event()

    class Joins:
        def event(self, event: CacheEvent) -> None:
            if event.kind == "coalesced":
                joined.set()

    cache = CacheService(MemoryBackend(clock=clock), observers=Joins())
    source = Source()
    get = hot_key(cache, source)
    await get()
    clock.advance(8.5)
    source.hold()
    assert await get() == "v1"  # starts the refresh, held
    await source.started()
    clock.advance(2)  # the entry expires: the next caller misses and joins the refresh
    late = asyncio.create_task(
        cache.get_or_set_async("hot", lambda: "own", ttl=10, refresh_ahead=2)
    )
    await joined.wait()
    await cache.close()
    assert await late == "own"
    assert source.cancelled


async def test_with_a_fill_lock_one_process_refreshes(
    redis_url: str, clean_redis: object, clock: FakeClock
) -> None:
    prefix = f"refresh{next(_prefixes)}"
    one, two = (
        CacheService(RedisBackend(redis_url, key_prefix=prefix, clock=clock), fill_lock_timeout=5)
        for _ in range(2)
    )
    first, second = Source(), Source()
    try:
        assert await hot_key(one, first)() == "v1"
        clock.advance(8.5)
        first.hold()
        assert await hot_key(one, first)() == "v1"
        await first.started()  # the first process holds the claim
        before = fills()
        assert await hot_key(two, second)() == "v1"
        refresh = fills() - before
        assert refresh
        await asyncio.gather(*refresh)  # it found the claim taken, and stood down
        assert second.calls == 0
        first.gate.set()
        await refreshes_landed()
        assert await two.get("hot") == "v2"
    finally:
        await one.close()
        await two.close()


@pytest.mark.redis
async def test_a_hybrid_refreshes_by_the_entry_in_redis_not_its_capped_copy(
    redis_url: str, clean_redis: object, clock: FakeClock
) -> None:
    l2 = RedisBackend(redis_url, key_prefix=f"refresh{next(_prefixes)}", clock=clock)
    cache = CacheService(HybridBackend(l2, l1_max_ttl=5, clock=clock))
    source = Source()

    def get() -> Awaitable[Any]:
        return cache.get_or_set_async("hot", source, ttl=100, refresh_ahead=2)

    try:
        await get()
        clock.advance(4)  # the L1 copy has 1 s left, the entry 96 s
        assert await get() == "v1"
        assert fills() == set()
        clock.advance(94.5)  # the entry has 1.5 s left
        source.entered.clear()
        assert await get() == "v1"
        await source.started()
        assert source.calls == 2
    finally:
        await cache.close()


# --- @cached, and what is refused ---------------------------------------------------------


async def test_cached_functions_refresh_ahead(clock: FakeClock) -> None:
    cache = CacheService(MemoryBackend(clock=clock))
    calls: list[int] = []

    @cached(cache, ttl=timedelta(seconds=10), refresh_ahead=timedelta(seconds=2))
    async def price(item: int) -> int:
        calls.append(item)
        return item * 10 + len(calls)

    assert await price(4) == 41
    clock.advance(9)
    assert await price(4) == 41  # served, and recomputed in the background
    await refreshes_landed()
    assert await price(4) == 42
    assert calls == [4, 4]
    await cache.close()


@pytest.mark.parametrize(
    ("refresh_ahead", "ttl", "error", "message"),
    [
        (10, 10, ValueError, "must be shorter than the ttl"),
        (1, None, ValueError, "needs a ttl"),
        (0, 10, ValueError, "positive, finite"),
        (float("nan"), 10, ValueError, "positive, finite"),
        ("2", 10, TypeError, "seconds (int/float), a timedelta or None"),
        (True, 10, TypeError, "got bool"),
    ],
)
async def test_a_window_that_cannot_work_is_refused(
    refresh_ahead: Any, ttl: float | None, error: type[Exception], message: str
) -> None:
    cache = CacheService(MemoryBackend())
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        await cache.get_or_set_async("k", lambda: 1, ttl=ttl, refresh_ahead=refresh_ahead)
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        cached(cache, ttl=ttl, refresh_ahead=refresh_ahead)
    assert await cache.get("k") is None


class _WithoutTTLReads:
    """A custom backend that keeps to the required port (a memory backend's methods)."""

    def __init__(self) -> None:
        self._inner = MemoryBackend()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("get_with_ttl"):
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_backend_without_ttl_reads_is_named_in_the_error() -> None:
    cache = CacheService(_WithoutTTLReads())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="_WithoutTTLReads does not"):
        await cache.get_or_set_async("k", lambda: 1, ttl=10, refresh_ahead=2)
    assert await cache.get_or_set_async("k", lambda: 1, ttl=10) == 1


async def test_cached_refuses_a_window_its_service_cannot_keep_where_it_is_written() -> None:
    forever = CacheService(MemoryBackend(), default_ttl=None)
    with pytest.raises(ValueError, match="needs a ttl"):
        cached(forever, refresh_ahead=2)
    with pytest.raises(ValueError, match="must be shorter than the ttl"):
        cached(CacheService(MemoryBackend(), default_ttl=2), refresh_ahead=2)
    with pytest.raises(TypeError, match="_WithoutTTLReads does not"):
        cached(CacheService(_WithoutTTLReads()), ttl=10, refresh_ahead=2)  # type: ignore[arg-type]
    cached(forever, ttl=10, refresh_ahead=2)  # a ttl of its own: fine


async def test_the_benchmark_runs() -> None:
    """`python -m benchmarks.early_refresh` still works: two waves, no timing asserted."""
    from benchmarks.early_refresh import CALLERS, _hot_key

    result = await _hot_key(MemoryBackend(), "memory", True, duration=0.4)
    assert [len(wave) for wave in result.waves] == [CALLERS, CALLERS]
    assert result.row().startswith("| memory | refresh_ahead=")


async def test_the_test_plugin_records_early_refreshed_reads() -> None:
    clock, recorder = ManualClock(), CacheRecorder()
    cache = make_test_cache(clock, recorder)
    source = Source()
    get = hot_key(cache, source)
    await get()
    clock.advance(8.5)
    assert await get() == "v1"
    await refreshes_landed()
    assert recorder.misses() == ["hot"]
    assert recorder.hits() == ["hot"]
    assert recorder.stores() == ["hot", "hot"]  # the first fill, and the refresh
    await cache.close()
