"""get_or_set_async: factory forms, single-flight, errors, None, and no stale write-back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from fastapi_cachekit import CacheService
from tests.backend_kinds import backend_factory
from tests.tasks import waiting_on_a_future


async def test_sync_factory(cache: CacheService) -> None:
    assert await cache.get_or_set_async("k", lambda: {"v": 1}) == {"v": 1}
    assert await cache.get("k") == {"v": 1}


async def test_async_factory(cache: CacheService) -> None:
    async def load() -> int:
        return 7

    assert await cache.get_or_set_async("k", load) == 7
    assert await cache.get("k") == 7


async def test_lambda_returning_an_awaitable(cache: CacheService) -> None:
    async def fetch_profile_from_db(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    value = await cache.get_or_set_async("p", lambda: fetch_profile_from_db(5), ttl=60)
    assert value == {"id": 5}
    assert await cache.get("p") == {"id": 5}


async def test_second_call_is_served_from_the_cache(cache: CacheService) -> None:
    calls = 0

    def factory() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await cache.get_or_set_async("k", factory) == 1
    assert await cache.get_or_set_async("k", factory) == 1
    assert calls == 1


async def test_none_result_is_cached(cache: CacheService) -> None:
    calls = 0

    def factory() -> None:
        nonlocal calls
        calls += 1

    assert await cache.get_or_set_async("k", factory) is None
    assert await cache.get_or_set_async("k", factory) is None
    assert calls == 1


async def test_concurrent_callers_share_one_factory_run(cache: CacheService) -> None:
    calls = 0
    release = asyncio.Event()

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "result"

    callers = [asyncio.create_task(cache.get_or_set_async("k", slow)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*callers) == ["result"] * 20
    assert calls == 1


async def test_factory_error_reaches_every_caller_and_nothing_is_cached(
    cache: CacheService,
) -> None:
    release = asyncio.Event()

    async def broken() -> str:
        await release.wait()
        raise RuntimeError("database down")

    callers = [asyncio.create_task(cache.get_or_set_async("k", broken)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "database down" for r in results)
    assert not await cache.exists("k")
    assert await cache.get_or_set_async("k", lambda: "recovered") == "recovered"


@pytest.mark.parametrize("cancelled", ["starter", "joiner"])
async def test_a_cancelled_caller_does_not_cancel_the_others(
    cache: CacheService, cancelled: str
) -> None:
    """Both callers wait on the one flight when one of them is cancelled."""
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return "done"

    starter = asyncio.create_task(cache.get_or_set_async("k", slow))
    await started.wait()
    joiner = asyncio.create_task(cache.get_or_set_async("k", slow))
    await waiting_on_a_future(starter)
    await waiting_on_a_future(joiner)
    victim, survivor = (starter, joiner) if cancelled == "starter" else (joiner, starter)
    victim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await victim
    release.set()
    assert await survivor == "done"
    assert await cache.get("k") == "done"
    assert calls == 1


Invalidate = Callable[[CacheService], Awaitable[object]]

INVALIDATIONS: dict[str, Invalidate] = {
    "delete": lambda c: c.delete("k", namespace="ns"),
    "namespace": lambda c: c.invalidate_namespace("ns"),
    "tag": lambda c: c.invalidate_tags(["other", "t2"]),
    "pattern": lambda c: c.invalidate_pattern("ns:*"),
    "pattern-literal": lambda c: c.invalidate_pattern("ns:k"),
    "pattern-one-char": lambda c: c.invalidate_pattern("ns:?"),
    "pattern-in-namespace": lambda c: c.invalidate_pattern("k", namespace="ns"),
    "clear_all": lambda c: c.clear_all(),
}


@pytest.mark.parametrize("invalidate", INVALIDATIONS.values(), ids=INVALIDATIONS.keys())
async def test_no_stale_write_back(cache: CacheService, invalidate: Invalidate) -> None:
    """An invalidation during a slow recompute: the result is returned but not stored."""
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_recompute() -> str:
        started.set()
        await release.wait()
        return "computed before the invalidation"

    caller = asyncio.create_task(
        cache.get_or_set_async("k", slow_recompute, namespace="ns", tags=["t1", "t2"])
    )
    await started.wait()
    await invalidate(cache)
    release.set()
    assert await caller == "computed before the invalidation"
    assert not await cache.exists("k", namespace="ns")


UNRELATED: dict[str, Invalidate] = {
    "delete": lambda c: c.delete("other"),
    "delete-in-namespace": lambda c: c.delete("other", namespace="ns"),
    "namespace": lambda c: c.invalidate_namespace("elsewhere"),
    "tag": lambda c: c.invalidate_tags(["unrelated"]),
    "pattern": lambda c: c.invalidate_pattern("zzz*"),
    "pattern-in-namespace": lambda c: c.invalidate_pattern("k", namespace="other"),
    "pattern-in-another-namespace": lambda c: c.invalidate_pattern("ns:k", namespace="ns"),
}


@pytest.mark.parametrize("invalidate", UNRELATED.values(), ids=UNRELATED.keys())
async def test_unrelated_invalidation_does_not_block_the_store(
    cache: CacheService, invalidate: Invalidate
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_recompute() -> str:
        started.set()
        await release.wait()
        return "fresh"

    caller = asyncio.create_task(
        cache.get_or_set_async("k", slow_recompute, namespace="ns", tags=["t1"])
    )
    await started.wait()
    await invalidate(cache)
    release.set()
    assert await caller == "fresh"
    assert await cache.get("k", namespace="ns") == "fresh"


@pytest.mark.parametrize("invalidate", INVALIDATIONS.values(), ids=INVALIDATIONS.keys())
async def test_a_caller_after_an_invalidation_starts_a_fresh_flight(
    cache: CacheService, invalidate: Invalidate
) -> None:
    """A flight that began before an invalidation is not joined by a caller that comes after
    it returned: that caller would get the value the invalidation removed."""
    started, release = asyncio.Event(), asyncio.Event()

    async def recompute(result: str) -> str:
        started.set()
        await release.wait()
        return result

    before = asyncio.create_task(
        cache.get_or_set_async("k", lambda: recompute("old"), namespace="ns", tags=["t1", "t2"])
    )
    await started.wait()
    await invalidate(cache)
    after = asyncio.create_task(
        cache.get_or_set_async("k", lambda: recompute("new"), namespace="ns", tags=["t1", "t2"])
    )
    await waiting_on_a_future(after)
    release.set()
    assert await before == "old"
    assert await after == "new"
    assert await cache.get("k", namespace="ns") == "new"


@pytest.mark.parametrize("invalidate", UNRELATED.values(), ids=UNRELATED.keys())
async def test_an_unrelated_invalidation_leaves_the_flight_joinable(
    cache: CacheService, invalidate: Invalidate
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def recompute() -> int:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()
        return calls

    first = asyncio.create_task(cache.get_or_set_async("k", recompute, namespace="ns", tags=["t1"]))
    await started.wait()
    await invalidate(cache)
    second = asyncio.create_task(
        cache.get_or_set_async("k", recompute, namespace="ns", tags=["t1"])
    )
    await waiting_on_a_future(second)
    release.set()
    assert await asyncio.gather(first, second) == [1, 1]


@pytest.mark.redis
@pytest.mark.parametrize("kind", ["redis", "hybrid"])
async def test_a_caller_whose_read_missed_while_a_flight_ran_gets_that_flight(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flight stores and lands between a caller's read (a miss) and its look for a
    flight: the caller takes that flight's value instead of running the factory again."""
    cache = CacheService(backend_factory(kind, request)())
    source_started, source_release = asyncio.Event(), asyncio.Event()
    read_missed, read_release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def source() -> int:
        nonlocal calls
        calls += 1
        source_started.set()
        await source_release.wait()
        return calls

    first = asyncio.create_task(cache.get_or_set_async("k", source))
    await source_started.wait()
    store_get = cache.backend.get

    async def held_get(fk: str) -> bytes | None:
        data = await store_get(fk)
        read_missed.set()
        await read_release.wait()
        return data

    monkeypatch.setattr(cache.backend, "get", held_get)
    second = asyncio.create_task(cache.get_or_set_async("k", source))
    await read_missed.wait()
    source_release.set()
    assert await first == 1  # stored, and its flight has landed
    read_release.set()
    assert await second == 1
    assert calls == 1
    await cache.close()
