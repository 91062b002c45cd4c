"""The service's synchronous fast path (backends/base.py NowaitReads/NowaitWrites).

A backend offering `get_nowait`/`set_nowait` is called without a coroutine; one without them,
or answering DEFERRED, is awaited. Either way the answers, the statistics and the fail-open
behaviour are the same.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fastapi_cachekit import CacheService, InvalidKeyError, MemoryBackend
from fastapi_cachekit.backends.base import (
    DEFERRED,
    Deferred,
    FillToken,
    NowaitReads,
    NowaitWrites,
    nowait_twin,
)
from fastapi_cachekit.errors import BackendUnavailable
from fastapi_cachekit.keys import storage_key
from tests.clock import FakeClock


class AsyncOnly:
    """A memory backend seen through the async protocol alone (as a Redis backend is)."""

    def __init__(self, inner: MemoryBackend) -> None:
        self._inner = inner
        self.awaited: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_nowait"):
            raise AttributeError(name)
        method = getattr(self._inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.awaited.append(name)
            return await method(*args, **kwargs)

        return call


class CountingMemory(MemoryBackend):
    """Counts the awaited get/set calls; `defer` makes the sync methods answer DEFERRED."""

    def __init__(self, *, defer: bool = False, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self.defer = defer
        self.awaited: list[str] = []

    # The async methods answer through MemoryBackend's sync ones: the overrides below may
    # answer DEFERRED, which only the service knows to follow.
    async def get(self, key: str) -> bytes | None:
        self.awaited.append("get")
        return super().get_nowait(key)

    async def set(self, key: str, value: bytes, **options: Any) -> bool:
        self.awaited.append("set")
        return super().set_nowait(key, value, **options)

    def get_nowait(self, key: str) -> bytes | Deferred | None:  # type: ignore[override]
        return DEFERRED if self.defer else super().get_nowait(key)

    def set_nowait(self, key: str, value: bytes, **options: Any) -> bool | Deferred:  # type: ignore[override]
        return DEFERRED if self.defer else super().set_nowait(key, value, **options)


class Faulty(MemoryBackend):
    """Every read and write fails, through the sync methods or the async ones."""

    def get_nowait(self, key: str) -> bytes | None:
        raise BackendUnavailable("down")

    def set_nowait(self, key: str, value: bytes, **options: Any) -> bool:
        raise BackendUnavailable("down")

    async def get(self, key: str) -> bytes | None:
        raise BackendUnavailable("down")

    async def set(self, key: str, value: bytes, **options: Any) -> bool:
        raise BackendUnavailable("down")


async def script(cache: CacheService, clock: FakeClock) -> list[Any]:
    """Every call that reads or writes through the fast path, with their answers."""
    answers: list[Any] = [
        await cache.set("a", {"n": 1}),
        await cache.set("b", [1, 2], ttl=5, namespace="ns", tags=["t"]),
        await cache.set("c\u00a0d", "no-break space", tags=["t"]),  # valid, not isprintable()
        await cache.set_raw("raw", b'"bytes"', ttl=5),
        await cache.get("a"),
        await cache.get("b", "ns"),
        await cache.get("c\u00a0d"),
        await cache.get("missing", default="dflt"),
        await cache.get_raw("raw"),
        await cache.get_raw("missing"),
        await cache.get_or_set_async("f", lambda: "made"),
        await cache.get_or_set_async("f", lambda: "not again"),
    ]
    fill = await cache.fill_token()
    await cache.invalidate_tags(["t"])
    answers += [
        await cache.set_raw("late", b"1", tags=["t"], fill=fill),
        await cache.get("b", "ns"),
        await cache.get("c\u00a0d"),
        await cache.set("a", {"n": 2}),
    ]
    clock.advance(6)
    answers += [await cache.get("raw"), await cache.get("a")]
    stats = await cache.get_stats()
    answers += [stats.total_hits, stats.total_misses, stats.total_entries, stats.errors]
    return answers


def test_the_memory_backend_offers_the_fast_path() -> None:
    assert isinstance(MemoryBackend(), NowaitReads)
    assert isinstance(MemoryBackend(), NowaitWrites)
    assert not isinstance(AsyncOnly(MemoryBackend()), NowaitReads)


async def test_fast_path_and_awaited_path_agree() -> None:
    start = 1_000_000.0
    clocks = [FakeClock(start) for _ in range(3)]
    fast_backend = CountingMemory(clock=clocks[0])
    awaited_backend = AsyncOnly(MemoryBackend(clock=clocks[1]))
    deferred_backend = CountingMemory(defer=True, clock=clocks[2])
    caches = [CacheService(fast_backend), CacheService(awaited_backend)]
    caches.append(CacheService(deferred_backend))
    fast, awaited, deferring = [
        await script(cache, clock) for cache, clock in zip(caches, clocks, strict=True)
    ]
    assert fast == awaited == deferring
    assert fast_backend.awaited == []  # nothing awaited: the sync methods answered
    assert {"get", "set"} <= set(awaited_backend.awaited)
    assert {"get", "set"} <= set(deferred_backend.awaited)
    for cache in caches:
        await cache.close()


FaultyCall = Callable[[CacheService], Awaitable[Any]]


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (lambda cache: cache.get("k", default="d"), "d"),
        (lambda cache: cache.get("k", "ns"), None),
        (lambda cache: cache.get_raw("k"), None),
        (lambda cache: cache.set("k", 1), False),
        (lambda cache: cache.set("k", 1, namespace="ns", tags=["t"]), False),
        (lambda cache: cache.set_raw("k", b"1"), False),
        (lambda cache: cache.get_or_set_async("k", lambda: 7), 7),
    ],
)
@pytest.mark.parametrize("through", ["sync", "awaited"])
async def test_faults_fail_open_on_either_path(
    call: FaultyCall, answer: object, through: str
) -> None:
    backend: Any = Faulty() if through == "sync" else AsyncOnly(Faulty())
    cache = CacheService(backend)
    assert await call(cache) == answer
    assert cache._errors >= 1
    await cache.close()


async def test_default_namespace_and_checks_bypass_the_key_fast_path() -> None:
    backend = MemoryBackend()
    cache = CacheService(backend, default_namespace="app")
    await cache.set("k", 1)
    assert list(backend._entries) == [storage_key("k", "app")]
    assert await cache.get("k") == 1
    with pytest.raises(InvalidKeyError, match="control character"):
        await cache.get("a\nb")
    with pytest.raises(InvalidKeyError, match="namespace"):
        await cache.get("k", "")
    await cache.close()


async def test_set_checks_in_the_same_order() -> None:
    """A call that is wrong twice names the same mistake as before the fast path."""
    cache = CacheService(MemoryBackend())
    with pytest.raises(InvalidKeyError, match="key"):
        await cache.set("", object(), ttl=-1, tags=[""])
    with pytest.raises(InvalidKeyError, match="namespace"):
        await cache.set("k", object(), ttl=-1, namespace="", tags=[""])
    with pytest.raises(ValueError, match="ttl"):
        await cache.set("k", object(), ttl=-1, tags=[""])
    with pytest.raises(InvalidKeyError, match="tag"):
        await cache.set("k", object(), tags=[""])
    await cache.close()


async def test_a_fill_token_still_guards_the_sync_write() -> None:
    backend = MemoryBackend()
    token: FillToken = await backend.fill_token()
    await backend.delete("k")
    stored = backend.set_nowait("k", b"1", ttl=None, namespace=None, tags=(), fill=token)
    assert stored is False
    assert await backend.get("k") is None


class ReadsFail(MemoryBackend):
    """The documented way to simulate a server that is down: only the async `get` raises."""

    async def get(self, key: str) -> bytes | None:
        raise BackendUnavailable("connection refused")


class WritesFail(MemoryBackend):
    async def set(self, key: str, value: bytes, **options: Any) -> bool:
        raise BackendUnavailable("connection refused")


def test_overriding_only_the_async_method_turns_the_fast_path_off() -> None:
    assert nowait_twin(ReadsFail(), "get") is None
    assert nowait_twin(ReadsFail(), "set") is not None
    assert nowait_twin(WritesFail(), "set") is None
    assert nowait_twin(WritesFail(), "get") is not None
    assert nowait_twin(CountingMemory(clock=FakeClock()), "get") is not None  # both overridden
    assert nowait_twin(AsyncOnly(MemoryBackend()), "get") is None
    patched = MemoryBackend()
    patched.get = ReadsFail().get  # type: ignore[method-assign]
    assert nowait_twin(patched, "get") is None


async def test_a_subclass_overriding_the_async_methods_is_still_awaited() -> None:
    reads = CacheService(ReadsFail())
    assert await reads.set("k", 1) is True
    assert await reads.get("k") is None  # the subclass's get raised: a miss, not a hit
    assert await reads.get_or_set_async("k", lambda: 42) == 42
    assert (await reads.get_stats()).errors == 2
    writes = CacheService(WritesFail())
    assert await writes.set("k", 1) is False
    assert await writes.get("k") is None
    assert (await writes.get_stats()).errors == 1
    await reads.close()
    await writes.close()
