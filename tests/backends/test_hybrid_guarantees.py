"""Hybrid guarantees under races and faults, against real redis-server processes.

- This process's own invalidation is visible to it as soon as the call returns, even when one
  of its readers read the old entry from L2 before the invalidation changed it.
- A queued invalidation is replayed as soon as Redis answers again, without another call,
  and at once when the channel hears Redis, whatever the breaker's back-off.
- L1 is bypassed once the channel has been silent past `l1_liveness` (a stalled Redis).
- Messages on the channel that are not announcements are counted and ignored; the listener
  survives them and any other error, and `close()` closes its connection.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.base import DEFERRED
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend, RedisEntry
from fastapi_cachekit.backends.redis.channel import SENDER_LENGTH
from fastapi_cachekit.errors import BackendUnavailable
from tests.backends.redis_support import elsewhere, server_url
from tests.backends.tcp_proxy import TcpProxy
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis

_DEADLINE = 10.0  # seconds: only reached when something is broken
TOPOLOGIES = pytest.mark.parametrize("topology", ["single", "cluster"])


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds (something another task or process does)."""
    deadline = time.monotonic() + _DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


@contextmanager
def stalled(server: RedisServer) -> Iterator[None]:
    """The redis-server stopped (SIGSTOP): connections stay open, nothing is answered."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


async def put(backend: HybridBackend | RedisBackend, key: str, value: bytes, **kw: Any) -> None:
    options: dict[str, Any] = {"ttl": None, "namespace": None, "tags": ()} | kw
    await backend.set(key, value, **options)


# --- this process's own invalidation ----------------------------------------------------

_OWN_CHANGES: dict[str, tuple[str, Callable[[HybridBackend], Awaitable[object]]]] = {
    "delete": ("delete", lambda backend: backend.delete("k")),
    "tags": ("invalidate_tags", lambda backend: backend.invalidate_tags(["t"])),
}


@TOPOLOGIES
@pytest.mark.parametrize("change", list(_OWN_CHANGES))
async def test_a_promotion_that_read_l2_before_an_own_invalidation_is_refused(
    request: pytest.FixtureRequest,
    clean_redis: object,
    monkeypatch: pytest.MonkeyPatch,
    topology: str,
    change: str,
) -> None:
    """The race: the invalidation has begun, a reader misses L1 and reads the old entry from
    L2 before L2 changes, the invalidation returns, then the reader promotes what it read."""
    url, cluster = server_url(request, topology), topology == "cluster"
    hybrid = HybridBackend(RedisBackend(url, cluster=cluster))
    writer = RedisBackend(url, cluster=cluster)
    await put(writer, "k", b"old", tags=("t",))  # in L2 only: the reader has to read it there
    assert await hybrid.get("warm-up") is None
    l2_method, run_change = _OWN_CHANGES[change]

    begun, finish = asyncio.Event(), asyncio.Event()
    invalidate_l2 = getattr(hybrid.l2, l2_method)

    async def invalidation_paused_before_l2(*args: Any) -> object:
        begun.set()
        await finish.wait()
        return await invalidate_l2(*args)

    read, promote = asyncio.Event(), asyncio.Event()
    get_entry = hybrid.l2.get_entry

    async def reader_paused_before_promotion(key: str) -> RedisEntry | None:
        entry = await get_entry(key)
        read.set()
        await promote.wait()
        return entry

    monkeypatch.setattr(hybrid.l2, l2_method, invalidation_paused_before_l2)
    monkeypatch.setattr(hybrid.l2, "get_entry", reader_paused_before_promotion)
    invalidation = asyncio.create_task(run_change(hybrid))
    await begun.wait()
    reader = asyncio.create_task(hybrid.get("k"))
    await read.wait()  # the reader holds the old entry, read before L2 changed
    finish.set()
    await invalidation  # acknowledged
    promote.set()
    assert await reader == b"old"  # it began before the invalidation returned
    monkeypatch.undo()
    assert "k" not in hybrid.l1._entries
    assert await hybrid.get("k") is None
    await hybrid.close()
    await writer.close()


@TOPOLOGIES
async def test_no_stale_read_after_own_deletes_with_concurrent_readers(
    request: pytest.FixtureRequest, clean_redis: object, topology: str
) -> None:
    """The same race left to chance: 4 readers hammer a key while it is deleted 200 times."""
    url, cluster = server_url(request, topology), topology == "cluster"
    hybrid = HybridBackend(RedisBackend(url, cluster=cluster))
    writer = RedisBackend(url, cluster=cluster)
    stale, running = 0, True

    async def read_forever() -> None:
        while running:
            await hybrid.get("k")
            await asyncio.sleep(0)  # an L1 hit never suspends: let the others run

    await hybrid.get("warm-up")
    readers = [asyncio.create_task(read_forever()) for _ in range(4)]
    try:
        for round_ in range(200):
            await put(writer, "k", b"%d" % round_)  # L2 only: readers promote it
            await asyncio.sleep(0)  # let the readers start their reads (no timing involved)
            await hybrid.delete("k")
            stale += await hybrid.get("k") is not None
    finally:
        running = False
        await asyncio.gather(*readers)
    assert stale == 0
    await hybrid.close()
    await writer.close()


# --- invalidations queued while Redis could not be reached ------------------------------


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.mark.parametrize("fault", ["sigstop", "cut-line"])
async def test_a_queued_invalidation_is_replayed_as_soon_as_redis_answers(
    redis_server: RedisServer, proxy: TcpProxy, clean_redis: object, fault: str
) -> None:
    """The invalidating process makes no call after Redis is back: the replay still happens,
    and the other process drops its L1 copy."""
    clock = FakeClock()
    l2_url = proxy.url if fault == "cut-line" else redis_server.url
    cut = HybridBackend(
        RedisBackend(l2_url, clock=clock, socket_timeout=0.1, breaker_max_backoff=0.05),
        pubsub_url=redis_server.url,
        clock=clock,
    )
    other = HybridBackend(RedisBackend(redis_server.url, clock=clock), clock=clock)
    service = CacheService(cut)
    await put(cut, "k", b"v", tags=("t",))
    assert await other.get("k") == b"v"  # in the other process's L1

    if fault == "cut-line":
        proxy.cut()
        with pytest.raises(BackendUnavailable):
            await cut.invalidate_tags(["t"])
    else:
        with stalled(redis_server), pytest.raises(BackendUnavailable):
            await cut.invalidate_tags(["t"])
    assert (await service.get_stats()).pending_invalidations == 1  # callers can see it
    # This process honours its own queued invalidation: neither L1 nor L2 serves the entry.
    assert cut.get_nowait("k") is DEFERRED
    assert await service.get("k") is None
    proxy.restore()  # (a no-op after the stall)

    await wait_until(lambda: cut.pending_invalidations == 0)
    await wait_until(lambda: "k" not in other.l1._entries)
    assert await other.get("k") is None
    await cut.close()
    await other.close()


async def test_the_channel_hearing_redis_again_replays_at_once(
    redis_server: RedisServer, clean_redis: object
) -> None:
    """The breaker's back-off may be long (up to breaker_max_backoff); the subscription's
    next pong already says Redis answers, and the queue goes out then."""
    cut = HybridBackend(
        RedisBackend(redis_server.url, socket_timeout=0.1, breaker_max_backoff=3600),
        heartbeat=0.02,
    )
    other = HybridBackend(RedisBackend(redis_server.url))
    await put(cut, "k", b"v")
    assert await other.get("k") == b"v"
    with stalled(redis_server):
        with pytest.raises(BackendUnavailable):
            await cut.delete("k")
        cut.l2.breaker.retry_at += 3600  # as after many failed probes: the next is an hour away
    await wait_until(lambda: cut.pending_invalidations == 0)
    await wait_until(lambda: "k" not in other.l1._entries)
    await cut.close()
    await other.close()


async def test_l1_is_bypassed_while_the_channel_is_silent(
    redis_server: RedisServer, clean_redis: object
) -> None:
    """A stalled Redis keeps the subscription open but answers nothing: once the channel has
    been silent for longer than `l1_liveness`, L1 is cleared and bypassed until it answers."""
    monotonic = FakeClock(0.0)
    hybrid = HybridBackend(
        RedisBackend(redis_server.url, socket_timeout=0.1),
        l1_liveness=1.0,
        heartbeat=0.02,
        monotonic=monotonic,
    )
    await put(hybrid, "k", b"v")
    assert hybrid.get_nowait("k") == b"v"

    def silent_past_the_bound() -> bool:
        monotonic.advance(1.5)  # (again each time: a pong sent before the stall may land)
        return not hybrid.coherent

    with stalled(redis_server):
        await wait_until(silent_past_the_bound)
        assert hybrid.get_nowait("k") is DEFERRED
        assert "k" not in hybrid.l1._entries
    await wait_until(lambda: hybrid.coherent)  # the next pong
    assert await hybrid.get("k") == b"v"
    assert hybrid.get_nowait("k") == b"v"
    await hybrid.close()


# --- the listener ------------------------------------------------------------------------


async def test_the_first_call_on_a_stalled_redis_returns(
    redis_server: RedisServer, clean_redis: object
) -> None:
    """The first call waits for the subscription's first attempt, which a stalled Redis never
    confirms: it gives up after one heartbeat, and the call goes on without L1."""
    hybrid = HybridBackend(RedisBackend(redis_server.url, socket_timeout=0.1), heartbeat=0.05)
    with stalled(redis_server), pytest.raises(BackendUnavailable):
        await hybrid.get("k")  # L2 times out: a miss for the service
    assert not hybrid.coherent
    await wait_until(lambda: hybrid.coherent)  # subscribed once Redis answers
    await hybrid.close()


_MALFORMED = [
    b'["not","an","object"]',
    b"not json",
    b'{"o":"t","a":"a string, not a list"}',
    b'{"o":"k","a":[1,2]}',
    b'{"o":"n","a":["a list"]}',
    b'{"o":"p","a":"*","n":7}',
    b'{"o":"p","a":""}',
    b'{"o":"z","a":[]}',
    b'{"o":7,"a":[]}',
    b"null",
]


async def test_malformed_messages_are_counted_and_ignored(
    redis_url: str, clean_redis: object
) -> None:
    hybrid = HybridBackend(RedisBackend(redis_url))
    service = CacheService(hybrid)
    await put(hybrid, "k", b"v")
    await put(hybrid, "marker", b"v")
    raw = aioredis.Redis.from_url(redis_url)
    for message in _MALFORMED:
        await raw.publish(elsewhere(hybrid.channel), message)
    await raw.publish(elsewhere(hybrid.channel), b'{"o":"k","a":["marker"]}')
    await wait_until(lambda: "marker" not in hybrid.l1._entries)  # heard after the others
    assert hybrid.malformed_messages == len(_MALFORMED)
    assert hybrid.coherent
    assert hybrid.get_nowait("k") == b"v"  # none of them removed anything
    assert (await service.get_stats()).errors == len(_MALFORMED)
    await raw.aclose()
    await hybrid.close()


async def test_close_after_a_malformed_message_closes_the_subscription(
    redis_url: str, clean_redis: object
) -> None:
    raw = redis.Redis.from_url(redis_url)
    patterns = raw.pubsub_numpat()
    hybrid = HybridBackend(RedisBackend(redis_url))
    await put(hybrid, "marker", b"v")
    raw.publish(elsewhere(hybrid.channel), b'["not","an","object"]')
    raw.publish(elsewhere(hybrid.channel), b'{"o":"k","a":["marker"]}')
    await wait_until(lambda: "marker" not in hybrid.l1._entries)
    assert raw.pubsub_numpat() == patterns + SENDER_LENGTH
    await hybrid.close()  # raises nothing
    assert raw.pubsub_numpat() == patterns
    raw.close()


async def test_a_listener_stopped_by_any_error_starts_again(
    redis_url: str, clean_redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever stops the listener (here an error applying a message to L1), L1 is cleared,
    bypassed meanwhile, and the listener subscribes again."""
    hybrid = HybridBackend(RedisBackend(redis_url))
    await put(hybrid, "k", b"v", tags=("t",))
    failed = asyncio.Event()

    async def fail_once(tags: object) -> int:
        monkeypatch.undo()
        failed.set()
        raise RuntimeError("an error applying a message")

    monkeypatch.setattr(hybrid.l1, "invalidate_tags", fail_once)
    raw = aioredis.Redis.from_url(redis_url)
    await raw.publish(elsewhere(hybrid.channel), b'{"o":"t","a":["t"]}')
    await failed.wait()
    await wait_until(lambda: not hybrid.coherent)
    assert "k" not in hybrid.l1._entries
    await wait_until(lambda: hybrid.coherent)  # subscribed again
    await put(hybrid, "j", b"v")
    await raw.publish(elsewhere(hybrid.channel), b'{"o":"k","a":["j"]}')
    await wait_until(lambda: "j" not in hybrid.l1._entries)  # and applying messages
    await raw.aclose()
    await hybrid.close()
