"""One service, many event loops: `asyncio.run` per job (Celery, arq) or a TestClient per test.

Each loop gets working connections and background work of its own; what belonged to a loop
that has ended is dropped, never awaited on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fastapi_cachekit import CacheService, MemoryBackend, cached_route, setup_cache
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis.faults import CircuitBreaker
from tests.backend_kinds import ALL_KINDS, HTTP_KINDS, backend_factory
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

T = TypeVar("T")


@pytest.fixture
def service_for(request: pytest.FixtureRequest) -> Iterator[Callable[[str], CacheService]]:
    """Builds a service over a fresh backend of a kind; closes it (on a loop of its own)."""
    made: list[CacheService] = []

    def build(kind: str) -> CacheService:
        made.append(CacheService(backend_factory(kind, request)()))
        return made[-1]

    yield build
    for service in made:
        asyncio.run(service.close())


def run(step: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(step())


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_each_asyncio_run_gets_a_working_cache(
    service_for: Callable[[str], CacheService], kind: str
) -> None:
    cache = service_for(kind)
    assert run(lambda: cache.set("k", "v", tags=["t"]))
    assert run(lambda: cache.get("k")) == "v"
    assert run(lambda: cache.get_or_set_async("g", lambda: "computed")) == "computed"
    assert run(lambda: cache.get("g")) == "computed"
    assert run(lambda: cache.invalidate_tags(["t"])) == 1
    assert run(lambda: cache.get("k")) is None
    stats = run(cache.get_stats)
    assert (stats.errors, stats.total_hits, stats.total_misses) == (0, 2, 2)


@pytest.mark.parametrize("kind", [p for p in ALL_KINDS if "hybrid" in str(p)])
def test_the_memory_tier_serves_again_on_a_new_loop(
    service_for: Callable[[str], CacheService], kind: str
) -> None:
    cache = service_for(kind)
    backend = cache.backend
    assert isinstance(backend, HybridBackend)
    run(lambda: cache.set("k", "v"))

    async def read_through_l1() -> bool:
        await cache.get("k")
        return backend.coherent and backend.l1.get_nowait("k") is not None

    assert run(read_through_l1)
    assert run(read_through_l1)


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_a_test_client_per_test(service_for: Callable[[str], CacheService], kind: str) -> None:
    cache = service_for(kind)
    app = FastAPI()
    setup_cache(app, cache)
    calls = 0

    @app.get("/count")
    @cached_route(ttl=60)
    async def count() -> int:
        nonlocal calls
        calls += 1
        return calls

    for _test in range(3):
        with TestClient(app) as client:
            assert client.get("/count").json() == 1
    assert TestClient(app).get("/count").json() == 1  # no lifespan: a loop per request
    assert run(cache.get_stats).errors == 0


def test_each_loop_gets_its_own_maintenance_task() -> None:
    cache = CacheService(MemoryBackend())

    async def maintained() -> bool:
        await cache.get("k")
        return any(_runs(task, "_maintain") for task in asyncio.all_tasks())

    assert run(maintained)
    assert run(maintained)
    run(cache.close)


def _runs(task: asyncio.Task[Any], name: str) -> bool:
    return getattr(task.get_coro(), "__name__", None) == name


def test_a_flight_of_another_loop_is_not_joined() -> None:
    cache = CacheService(MemoryBackend())
    loop = asyncio.new_event_loop()  # run by hand: it stops with its tasks pending

    async def start_a_flight_that_never_lands() -> None:
        started = asyncio.Event()

        async def forever() -> str:
            started.set()
            await loop.create_future()
            return "never"

        loop.create_task(cache.get_or_set_async("k", forever))  # noqa: RUF006
        await started.wait()

    loop.run_until_complete(start_a_flight_that_never_lands())
    try:
        assert run(lambda: cache.get_or_set_async("k", lambda: "fresh")) == "fresh"
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


@pytest.mark.redis
def test_queued_invalidations_replay_on_a_new_loop(redis_server: RedisServer) -> None:
    """Two readers wait for one replay on the loop that queued it, and again on the next."""
    backend = RedisBackend(redis_server.url, key_prefix="loops")
    clock = FakeClock()
    backend.redis.breaker = CircuitBreaker(1.0, monotonic=clock)
    cache = CacheService(backend)

    async def two_readers() -> list[object]:
        return list(await asyncio.gather(cache.get("k"), cache.get("k")))

    try:
        run(lambda: cache.set("k", "v"))
        redis_server.stop()
        assert run(lambda: cache.delete("k")) is False  # queued: Redis is down
        clock.advance(10)  # the breaker lets one probe through: the other reader waits
        assert run(two_readers) == [None, None]
        redis_server.start()
        clock.advance(10)
        assert run(two_readers) == [None, None]
        assert backend.pending_invalidations == 0
    finally:
        run(cache.close)


@pytest.mark.redis
def test_the_memory_tier_is_not_trusted_once_the_loop_that_listened_has_ended(
    redis_url: str, clean_redis: object
) -> None:
    # Nothing heard this process's channel between the two loops, so what its memory tier
    # holds may be stale: the new loop must read Redis until it listens again.
    mine = HybridBackend(RedisBackend(redis_url, key_prefix="loops"))
    cache = CacheService(mine)
    run(lambda: cache.set("k", "old"))

    async def another_process_changes_it_then_this_one_reads() -> object:
        other = CacheService(HybridBackend(RedisBackend(redis_url, key_prefix="loops")))
        await other.set("k", "new")
        await other.close()
        return await cache.get("k")

    assert run(another_process_changes_it_then_this_one_reads) == "new"
    run(cache.close)
