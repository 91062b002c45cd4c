"""The service's synchronous fast path (backends/base.py NowaitReads/NowaitWrites).

A backend offering `get_nowait`/`set_nowait` (memory) is called without a coroutine; one
without them (Redis) is awaited. Either way the answers, the statistics and the fail-open
behaviour are the same; faults are real ones: a Redis server that is stopped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fastapi_cachekit import CacheService, InvalidKeyError, MemoryBackend
from fastapi_cachekit.backends.base import FillToken, NowaitReads, NowaitWrites
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.keys import storage_key
from tests.clock import FakeClock
from tests.redis_servers import RedisServer


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
    assert not isinstance(RedisBackend("redis://127.0.0.1:1"), NowaitReads)


@pytest.mark.redis
async def test_fast_path_and_awaited_path_agree(redis_server: RedisServer) -> None:
    start = 1_000_000.0
    clocks = [FakeClock(start) for _ in range(2)]
    fast = CacheService(MemoryBackend(clock=clocks[0]))
    awaited = CacheService(RedisBackend(redis_server.url, clock=clocks[1]))
    assert await script(fast, clocks[0]) == await script(awaited, clocks[1])
    for cache in (fast, awaited):
        await cache.close()


FaultyCall = Callable[[CacheService], Awaitable[Any]]


@pytest.mark.redis
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
async def test_faults_fail_open(
    call: FaultyCall, answer: object, redis_server: RedisServer
) -> None:
    cache = CacheService(RedisBackend(redis_server.url, connect_timeout=0.1, socket_timeout=0.1))
    redis_server.stop()
    assert await call(cache) == answer
    assert (await cache.get_stats()).errors >= 1
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
