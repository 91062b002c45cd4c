"""The service tells its observers what happened: reads, invalidations; a failing observer
is a counted fault, never the caller's error."""

from __future__ import annotations

import pytest

from fastapi_cachekit import CacheService, MemoryBackend, create_cache
from fastapi_cachekit.events import CacheEvent


class Recorder:
    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def event(self, event: CacheEvent) -> None:
        self.events.append(event)

    def told(self) -> list[tuple[str, str | None]]:
        """The reads told: (hit or miss, namespace)."""
        return [(e.kind, e.namespace) for e in self.events if e.kind in ("hit", "miss")]


class Broken:
    def event(self, event: CacheEvent) -> None:
        raise RuntimeError("observer bug")


async def test_reads_are_told_with_their_namespace() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), default_namespace="app", observers=recorder) as cache:
        await cache.set("a", 1)
        await cache.get("a")
        await cache.get("b")
        await cache.get("a", namespace="other")
    assert recorder.told() == [("hit", "app"), ("miss", "app"), ("miss", "other")]
    assert {e.layer for e in recorder.events} == {"memory"}


async def test_invalidations_are_told_with_what_they_removed() -> None:
    recorder = Recorder()
    async with create_cache(backend="memory", observers=[recorder]) as cache:
        await cache.set("a", 1, namespace="n", tags=["t"])
        await cache.set("b", 1, namespace="n", tags=["t"])
        assert await cache.invalidate_tags(["t"]) == 2
        await cache.delete("missing")
    told = [(e.kind, e.reason, e.count) for e in recorder.events if e.kind == "invalidation"]
    assert told == [("invalidation", "tags", 2), ("invalidation", "key", 0)]
    assert all(
        e.duration is not None and e.duration >= 0
        for e in recorder.events
        if e.kind == "invalidation"
    )


async def test_a_failing_observer_is_a_fault_and_the_others_still_hear() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=[Broken(), recorder]) as cache:
        assert await cache.get("a") is None
        stats = await cache.get_stats()
    assert recorder.told() == [("miss", None)]
    assert stats.errors == 1
    assert stats.total_misses == 1


async def test_observers_come_and_go() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend()) as cache:
        assert cache.emit is None
        assert cache.observers == ()
        cache.add_observer(recorder)
        cache.add_observer(recorder)
        await cache.get("a")
        cache.remove_observer(recorder)
        await cache.get("a")
        assert cache.emit is None
        stats = await cache.get_stats()
    assert recorder.told() == [("miss", None)]
    assert stats.total_misses == 2


async def test_without_stats_observers_still_hear_reads() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), enable_stats=False, observers=recorder) as cache:
        await cache.get("a")
        stats = await cache.get_stats()
    assert recorder.told() == [("miss", None)]
    assert stats.total_misses == 0


def test_an_object_without_event_is_refused() -> None:
    with pytest.raises(TypeError, match="event"):
        CacheService(MemoryBackend(), observers=[object()])  # type: ignore[list-item]


class InvalidationsOnly(Recorder):
    kinds = frozenset({"invalidation"})


async def test_observers_that_want_no_reads_leave_the_read_path_unobserved() -> None:
    wanting, reads_too = InvalidationsOnly(), Recorder()
    async with CacheService(MemoryBackend(), observers=wanting) as cache:
        await cache.get("a")
        await cache.delete("a")
        assert [e.kind for e in wanting.events] == ["invalidation"]  # the read was not told
        cache.add_observer(reads_too)
        await cache.get("a")
        assert [e.kind for e in reads_too.events] == ["miss"]
        stats = await cache.get_stats()
    assert stats.total_misses == 2


async def test_reads_with_early_refresh_are_told_like_other_reads() -> None:
    recorder = Recorder()
    async with CacheService(MemoryBackend(), observers=recorder) as cache:
        for _ in range(2):
            await cache.get_or_set_async("k", lambda: 1, ttl=60, namespace="n", refresh_ahead=5)
    assert [(e.kind, e.namespace) for e in recorder.events if e.kind in ("hit", "miss")] == [
        ("miss", "n"),
        ("hit", "n"),
    ]
