"""Redis faults on a real server of our own: killed, restarted, paused, slow, never started.

Assertions are about what the backend did (breaker state, network attempts, what Redis holds
afterwards), never about wall-clock durations. Waits poll, bounded by a generous deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.redis import Invalidation, RedisBackend
from fastapi_cachekit.errors import BackendError, BackendUnavailable
from tests.backends.redis_support import BackendFactory
from tests.clock import FakeClock
from tests.redis_servers import RedisServer, RedisServers

pytestmark = pytest.mark.redis

_DEADLINE = 10.0  # seconds: only reached when something is broken


@pytest.fixture
async def make_backend(redis_server: RedisServer) -> AsyncIterator[BackendFactory]:
    async with BackendFactory(redis_server.url, False, FakeClock()) as factory:
        yield factory


def quick(make_backend: BackendFactory, **options: object) -> RedisBackend:
    """A backend with short timeouts and back-off, so that tests wait little."""
    settings: dict[str, object] = {
        "socket_timeout": 0.1,
        "connect_timeout": 0.1,
        "breaker_max_backoff": 0.02,
    }
    return make_backend(**(settings | options))


async def eventually(call: Callable[[], Awaitable[object]]) -> object:
    """Poll `call` until it stops raising BackendUnavailable; its result."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        try:
            return await call()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)


async def test_a_dead_redis_fails_fast_without_network_attempts(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    backend = quick(make_backend, breaker_max_backoff=60)  # no probe during this test
    await backend.set("k", b"v", ttl=None, namespace=None, tags=())
    redis_server.stop()
    with pytest.raises(BackendUnavailable) as raised:
        await backend.get("k")
    assert isinstance(raised.value.__cause__, redis.RedisError)
    assert backend.breaker.state == "open"
    attempts = backend.redis.attempts
    for _ in range(50):
        for call in (
            backend.get("k"),
            backend.exists("k"),
            backend.set("k", b"v", ttl=1, namespace=None, tags=("t",)),
            backend.stats(),
        ):
            with pytest.raises(BackendUnavailable):
                await call
    assert backend.redis.attempts == attempts  # the breaker answered; the network was idle
    assert backend.breaker.rejections >= 200


async def test_the_cache_works_again_when_redis_returns(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    backend = quick(make_backend)
    await backend.set("k", b"v", ttl=None, namespace=None, tags=())
    redis_server.stop()
    with pytest.raises(BackendUnavailable):
        await backend.get("k")
    with pytest.raises(BackendUnavailable):
        await backend.invalidate_tags(["t"])  # queued
    redis_server.start()  # same port, empty (nothing is persisted)
    assert await eventually(lambda: backend.set("k", b"w", ttl=None, namespace=None, tags=()))
    assert await backend.get("k") == b"w"
    assert backend.breaker.state == "closed"
    # The queued invalidation reached the restarted server before the write did.
    assert redis_server.command("ZRANGE", backend.layout.shards[0].log, 0, -1) == [b"t:t"]
    assert backend.pending_invalidations == 0


async def test_redis_down_at_startup(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    redis_server.stop()
    backend = quick(make_backend)  # connects lazily: nothing happens yet
    with pytest.raises(BackendUnavailable):
        await backend.fill_token()
    redis_server.start()
    assert await eventually(backend.fill_token) > 0


async def test_queued_invalidations_are_replayed_before_reads(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    backend = quick(make_backend, breaker_max_backoff=0.05)
    told: list[Invalidation] = []

    async def replayed(invalidation: Invalidation) -> None:
        told.append(invalidation)

    backend.on_replay(replayed)
    for key, namespace, tags in [
        ("a", None, ("t",)),
        ("n:b", "n", ()),
        ("c", None, ()),
        ("d", None, ()),
    ]:
        await backend.set(key, b"v", ttl=None, namespace=namespace, tags=tags)
    # Redis stays alive with its data but answers nobody: a network partition.
    redis_server.command("CLIENT", "PAUSE", "250", "ALL")
    invalidations: list[Callable[[], Awaitable[object]]] = [
        lambda: backend.invalidate_tags(["t"]),
        lambda: backend.invalidate_namespace("n"),
        lambda: backend.delete("c"),
    ]
    for invalidate in invalidations:
        with pytest.raises(BackendUnavailable):
            await invalidate()
    assert backend.pending_invalidations == 3
    assert (await eventually(lambda: backend.get("d"))) == b"v"
    assert backend.pending_invalidations == 0
    assert [await backend.exists(key) for key in ("a", "n:b", "c", "d")] == [
        False,
        False,
        False,
        True,
    ]
    log = redis_server.command("ZRANGE", backend.layout.shards[0].log, 0, -1)  # by number
    assert log == [b"t:t", b"n:n", b"k:c"]  # replayed in the order they were made
    assert [(i.kind, i.names) for i in told] == [
        ("tags", ("t",)),
        ("namespace", ("n",)),
        ("key", ("c",)),
    ]  # and the callback given to on_replay told of each, in that order


async def test_an_overflowing_queue_becomes_one_full_clear(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    backend = quick(make_backend, breaker_max_backoff=0.05, max_pending_invalidations=2)
    await backend.set("a", b"v", ttl=None, namespace=None, tags=())
    await backend.set("b", b"v", ttl=None, namespace=None, tags=())
    redis_server.command("SET", "foreign", "kept")
    redis_server.command("CLIENT", "PAUSE", "250", "ALL")
    for key in ("x", "y", "z"):
        with pytest.raises(BackendUnavailable):
            await backend.delete(key)
    assert backend.pending_invalidations == 1  # the queue was dropped for a clear
    assert (await eventually(lambda: backend.exists("a"))) is False
    assert not await backend.exists("b")
    assert redis_server.command("GET", "foreign") == b"kept"


async def test_a_slow_redis_times_out_and_opens_the_breaker(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    backend = quick(make_backend, breaker_max_backoff=60)
    await backend.get("k")  # connected
    sleeper = asyncio.create_task(asyncio.to_thread(redis_server.command, "DEBUG", "SLEEP", "0.3"))
    causes: list[BaseException | None] = []
    deadline = time.monotonic() + _DEADLINE
    while backend.breaker.state == "closed" and time.monotonic() < deadline:
        try:
            await backend.get("k")  # succeeds until the server starts sleeping
        except BackendUnavailable as exc:
            causes.append(exc.__cause__)
        await asyncio.sleep(0.005)
    assert backend.breaker.state == "open"
    assert [type(cause) for cause in causes] == [redis.TimeoutError]
    await sleeper


async def test_calls_waiting_for_a_connection_are_refused_once_the_breaker_opens(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    backend = quick(make_backend, max_connections=1, breaker_max_backoff=60)
    await backend.get("k")  # connected
    redis_server.command("CLIENT", "PAUSE", "500", "ALL")
    attempts = backend.redis.attempts
    results = await asyncio.gather(*(backend.get("k") for _ in range(5)), return_exceptions=True)
    assert [type(result) for result in results] == [BackendUnavailable] * 5
    assert backend.redis.attempts == attempts + 1  # the others never reached the network
    assert backend.breaker.state == "open"


async def test_the_service_fails_open_when_redis_is_down(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    service = CacheService(quick(make_backend, breaker_max_backoff=60))
    await service.set("k", 1)
    redis_server.stop()
    assert await service.get("k") is None
    assert not await service.set("k", 2)
    assert await service.get_or_set_async("k", lambda: 3) == 3
    assert await service.invalidate_tags(["t"]) == 0
    stats = await service.get_stats()
    assert stats.errors > 0
    await service.close()


async def test_an_invalidation_that_redis_refuses_is_queued_and_replayed(
    make_backend: BackendFactory, redis_server: RedisServer
) -> None:
    """Not only an unreachable Redis: any failure leaves the invalidation owed."""
    backend = make_backend()
    await backend.set("k", b"v", ttl=None, namespace=None, tags=())
    redis_server.command("SET", backend.layout.sequence, "not a number")  # refused mid-step
    with pytest.raises(BackendError):
        await backend.delete("k")
    assert backend.pending_invalidations == 1
    redis_server.command("DEL", backend.layout.sequence)
    assert await backend.get("k") is None  # replayed before the read
    assert backend.pending_invalidations == 0


async def test_a_cluster_that_is_down_is_unreachable_and_opens_the_breaker(
    redis_servers: RedisServers,
) -> None:
    """redis-py turns `CLUSTERDOWN ...` into ClusterDownError("..."), prefix gone: it is still
    Redis unable to answer (fail fast), not a command it refused."""
    node = redis_servers.lone_cluster_node()
    backend = RedisBackend(node.url, breaker_max_backoff=60)
    try:
        with pytest.raises(BackendUnavailable) as raised:
            await backend.get("k")
        assert isinstance(raised.value.__cause__, redis.exceptions.ClusterDownError)
        assert backend.breaker.state == "open"
    finally:
        await backend.close()
        node.stop()
