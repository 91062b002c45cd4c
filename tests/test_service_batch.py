"""The service's batches beyond the contract suite: flights detached by delete_many, and a
backend without batch calls of its own (the service loops over its single-key calls)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.base import BatchBackend, CacheBackend
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.events import CacheEvent
from fastapi_cachekit.testing import CacheRecorder, make_test_cache


async def test_delete_many_detaches_the_flights_of_its_keys() -> None:
    cache = CacheService(MemoryBackend())
    started, release, runs = asyncio.Event(), asyncio.Event(), []

    async def load() -> int:
        runs.append(None)
        number = len(runs)
        started.set()
        await release.wait()
        return number

    first = asyncio.create_task(cache.get_or_set_async("k", load))
    await started.wait()  # the first flight has taken its fill token and runs
    await cache.delete_many(["k", "other"])
    # A new flight: the first may hold data from before the delete (joined, it would say 1).
    second = asyncio.create_task(cache.get_or_set_async("k", load))
    release.set()
    assert (await first, await second) == (1, 2)
    assert await cache.get("k") == 2  # the first's write was refused: it began before
    await cache.close()


class WithoutBatches:
    """A backend of someone else's making: the single-key port only."""

    def __init__(self, inner: CacheBackend) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_many") or name.endswith("_nowait"):
            raise AttributeError(name)
        return getattr(self._inner, name)


async def test_a_backend_without_batches_is_called_key_by_key() -> None:
    backend = WithoutBatches(MemoryBackend())
    # (Not isinstance(backend, CacheBackend): from Python 3.12 protocol checks do not see
    # attributes served by __getattr__, and the service does not ask.)
    assert not isinstance(backend, BatchBackend)
    cache = CacheService(backend)  # type: ignore[arg-type]
    assert await cache.set_many({"a": 1, "b": 2}, tags=["t"]) == 2
    assert await cache.get_many(["a", "b", "c"]) == {"a": 1, "b": 2}
    assert await cache.delete_many(["a", "c"]) == 1
    assert await cache.invalidate_tags(["t"]) == 1
    await cache.close()


async def test_the_test_recorder_sees_each_key_of_a_batch() -> None:
    recorder = CacheRecorder()
    cache = make_test_cache(recorder=recorder)
    await cache.set_many({"a": 1, "b": 2}, namespace="ns")
    await cache.get_many(["a", "c"], namespace="ns")
    assert recorder.stores() == ["ns:a", "ns:b"]
    assert (recorder.hits(), recorder.misses()) == (["ns:a"], ["ns:c"])
    await cache.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def event(self, event: CacheEvent) -> None:
        self.events.append(event)


async def test_observers_hear_each_write_and_read_and_one_invalidation_per_batch() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        await cache.set_many({"a": 1, "b": 2}, namespace="n")
        await cache.get_many(["a", "c", "b"], namespace="n")
        assert await cache.delete_many(["a", "b", "c"], namespace="n") == 2
    told = [(e.kind, e.namespace, e.reason, e.count) for e in recorder.events]
    assert told == [
        ("stored", "n", None, 1),
        ("stored", "n", None, 1),
        ("hit", "n", None, 1),
        ("miss", "n", None, 1),
        ("hit", "n", None, 1),
        ("invalidation", "n", "key", 2),
    ]
