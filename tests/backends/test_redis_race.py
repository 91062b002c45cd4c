"""Writes racing invalidations, across several clients: no survivors, no orphans, no stale fills.

All tasks share one event loop, so a counter ticked around each call orders the calls: "A
returned before B began" is `A.end < B.start`. Separate backends (separate connection pools)
stand for separate processes, so the calls really interleave inside Redis.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis import ops as redis_ops
from tests.backends.redis_support import (
    BackendFactory,
    RawClient,
    entries,
    index_members,
    keys,
    listed,
    open_raw,
    server_url,
)
from tests.clock import FakeClock
from tests.redis_servers import RedisServers

pytestmark = pytest.mark.redis


@pytest.fixture(params=["single", "cluster"])
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(request: pytest.FixtureRequest, topology: str, clean_redis: RedisServers) -> str:
    return server_url(request, topology)


@pytest.fixture
async def processes(url: str, topology: str) -> AsyncIterator[list[RedisBackend]]:
    async with BackendFactory(url, topology == "cluster", FakeClock()) as make:
        yield [make(max_connections=8) for _ in range(3)]


@pytest.fixture
def raw(url: str, topology: str) -> Iterator[RawClient]:
    client = open_raw(url, topology == "cluster")
    yield client
    client.close()


@dataclass
class Call:
    kind: str
    start: int
    end: int


class Timeline:
    """A total order of events in one event loop."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1)

    def tick(self) -> int:
        return next(self._ticks)


def check_indexes(raw: RawClient, backend: RedisBackend, namespaced: set[str]) -> set[str]:
    """Every stored entry is reachable through its indexes and no index member is an orphan;
    returns the stored entries.

    The namespace index may keep dead members: a tag invalidation removes an entry from the
    index it invalidates, not from its others (writes trim those). Every invalidator ends
    with a tag invalidation, so the tag index has none.
    """
    stored = set(entries(raw, backend))
    assert index_members(raw, backend, "t", "hot") == stored
    assert index_members(raw, backend, "n", "hot-ns") & stored == stored & namespaced
    assert listed(raw, backend) == stored
    assert not keys(raw, "*:[NT]:hot*")  # no drain key left behind
    return stored


async def test_sets_racing_invalidations_leave_no_survivor_and_no_orphan(
    processes: list[RedisBackend], raw: RawClient
) -> None:
    timeline = Timeline()
    written: dict[str, int] = {}
    namespaced: set[str] = set()
    calls: list[Call] = []

    async def writer(number: int) -> None:
        backend = processes[number % len(processes)]
        for i in range(30):
            namespace = "hot-ns" if i % 2 else None
            key = f"w{number}:{i}" if namespace is None else f"{namespace}:w{number}:{i}"
            await backend.set(key, b"v", ttl=None, namespace=namespace, tags=("hot", f"w{i}"))
            written[key] = timeline.tick()
            if namespace:
                namespaced.add(key)

    async def invalidator(number: int) -> None:
        backend = processes[number % len(processes)]
        for i in range(12):
            kind, start = ("tag" if i % 2 else "namespace"), timeline.tick()
            if kind == "tag":
                await backend.invalidate_tags(["hot"])
            else:
                await backend.invalidate_namespace("hot-ns")
            calls.append(Call(kind, start, timeline.tick()))
            await asyncio.sleep(0)

    await asyncio.gather(*(writer(n) for n in range(6)), *(invalidator(n) for n in range(2)))

    for key, done in written.items():
        covering = [c for c in calls if c.kind == "tag" or key in namespaced]
        if any(call.start > done for call in covering):
            assert not await processes[0].exists(key), f"{key} survived an invalidation"
    left = check_indexes(raw, processes[0], namespaced)
    assert await processes[1].invalidate_tags(["hot"]) == len(left)
    assert check_indexes(raw, processes[0], namespaced) == set()


async def test_writes_during_a_chunked_invalidation_stay_reachable(
    processes: list[RedisBackend], raw: RawClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_ops, "CHUNK", 20)  # many chunks from few entries
    before = [f"old:{i}" for i in range(300)]
    for chunk in range(0, len(before), 100):
        await asyncio.gather(
            *(
                processes[0].set(key, b"v", ttl=None, namespace=None, tags=("hot",))
                for key in before[chunk : chunk + 100]
            )
        )

    async def write_new() -> list[str]:
        new = []
        for i in range(40):
            key = f"new:{i}"
            await processes[1].set(key, b"v", ttl=None, namespace=None, tags=("hot",))
            new.append(key)
            await asyncio.sleep(0)
        return new

    removed, new = await asyncio.gather(processes[2].invalidate_tags(["hot"]), write_new())
    assert removed >= len(before)
    survivors = check_indexes(raw, processes[0], set())
    assert survivors <= set(new)  # only writes racing the call may survive...
    assert await processes[0].invalidate_tags(["hot"]) == len(survivors)  # ...and reachably


async def test_a_stale_read_of_a_drain_leaves_a_newer_write_alone(
    processes: list[RedisBackend], raw: RawClient
) -> None:
    """A drain's members are read in one call and removed in the next: a key that another
    call took out of the drain meanwhile, and that was written again since (into the new
    index), is not removed (it would stay listed in the new index with no entry)."""
    backend = processes[0]
    await backend.set("k", b"v", ttl=None, namespace=None, tags=("hot",))
    shard = backend.layout.shard_of("k")
    drain = shard.drain("t", "hot")
    raw.sadd(drain, "other")  # the drain of an invalidation in progress, "k" taken out
    assert await backend._ops.remove(shard, ["k"], drain, "s", "t:hot") == (0, 0, False)
    assert await backend.exists("k")
    assert index_members(raw, backend, "t", "hot") == {"k"}


async def test_no_fill_lands_after_an_invalidation_that_began_after_its_token(
    processes: list[RedisBackend],
) -> None:
    timeline = Timeline()
    calls: list[Call] = []
    fills: list[tuple[int, int, bool]] = []  # (token taken, set began, stored)
    filling = True
    finished = asyncio.Condition()  # notified after each invalidation

    def began_after(taken: int) -> Callable[[], bool]:
        return lambda: any(call.start > taken for call in calls)

    async def filler(number: int) -> None:
        backend = processes[number % len(processes)]
        for i in range(18):
            token = await backend.fill_token()
            taken = timeline.tick()
            # The "factory". Every third one runs until an invalidation that began after the
            # token has finished, so that some fills are certainly stale; the others are quick.
            await asyncio.sleep(0)
            if i % 3 == 0:
                async with finished:
                    await finished.wait_for(began_after(taken))
            began = timeline.tick()
            ok = await backend.set(
                f"k{i % 4}", b"v", ttl=None, namespace=None, tags=("hot",), fill=token
            )
            fills.append((taken, began, ok))

    async def invalidator() -> None:
        while filling:
            start = timeline.tick()
            await processes[2].invalidate_tags(["hot"])
            calls.append(Call("tag", start, timeline.tick()))
            async with finished:
                finished.notify_all()
            await asyncio.sleep(0.002)  # quiet moments, in which fills may land

    running = asyncio.create_task(invalidator())
    await asyncio.gather(*(filler(n) for n in range(3)))
    filling = False
    await running

    stale = [
        (taken, began)
        for taken, began, ok in fills
        if ok and any(call.start > taken and call.end < began for call in calls)
    ]
    assert not stale, "a fill was stored after an invalidation it should have seen"
    assert sum(not ok for _, _, ok in fills) >= 3 * 6  # the slow factories, at least
    assert any(ok for _, _, ok in fills)
