"""Hybrid backend: L1 hits, promotion TTLs, coherence across real processes and on a cluster,
channel loss, invalidations replayed after Redis was unreachable."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from fastapi_cachekit import CacheService, create_cache
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend, RedisEntry
from fastapi_cachekit.errors import BackendUnavailable
from fastapi_cachekit.keys import storage_key
from tests.backends.redis_support import elsewhere
from tests.backends.tcp_proxy import TcpProxy
from tests.clock import FakeClock
from tests.redis_servers import RedisServer, RedisServers

pytestmark = pytest.mark.redis


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def hybrid(
    redis_url: str, clean_redis: object, clock: FakeClock
) -> AsyncIterator[HybridBackend]:
    backend = HybridBackend(RedisBackend(redis_url, clock=clock), clock=clock)
    yield backend
    await backend.close()


async def put(backend: HybridBackend | RedisBackend, key: str, value: bytes, **kw: Any) -> None:
    options: dict[str, Any] = {"ttl": None, "namespace": None, "tags": ()} | kw
    await backend.set(key, value, **options)


_DEADLINE = 10.0  # seconds: only reached when something is broken


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll until `condition()` holds (an announcement arriving in another backend's L1)."""
    deadline = time.monotonic() + _DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


async def eventually(call: Callable[[], Awaitable[object]]) -> object:
    """Retry `call` until Redis answers it (the breaker lets a probe through); its result."""
    deadline = time.monotonic() + _DEADLINE
    while True:
        try:
            return await call()
        except BackendUnavailable:
            assert time.monotonic() < deadline, "Redis never answered"
            await asyncio.sleep(0.005)


async def test_subscription_is_live_before_the_first_operation_returns(
    hybrid: HybridBackend, redis_url: str
) -> None:
    assert await hybrid.get("anything") is None
    assert hybrid.coherent
    raw = redis.Redis.from_url(redis_url)
    # Another process's announcement reaches it (`publish` answers how many subscribers).
    assert raw.publish(elsewhere(hybrid.channel), b'{"o":"k","a":["nothing"]}') == 1
    raw.close()


async def test_l1_hits_make_no_redis_call(hybrid: HybridBackend) -> None:
    await put(hybrid, "k", b"v")
    calls = hybrid.l2.redis.attempts
    assert await hybrid.get("k") == b"v"
    assert await hybrid.get("k") == b"v"
    assert hybrid.l2.redis.attempts == calls


async def test_promotion_keeps_the_remaining_ttl(
    hybrid: HybridBackend, redis_url: str, clock: FakeClock
) -> None:
    other = RedisBackend(redis_url, clock=clock)
    await put(other, "k", b"v", ttl=30)
    clock.advance(10)
    assert await hybrid.get("k") == b"v"  # promoted with 20 s left
    assert hybrid.l1._entries["k"].expires_at == pytest.approx(clock.now + 20)
    # L1 keeps `now + (expiry - now)`, which float rounding may put one ulp past the expiry.
    clock.advance(20 + 1e-6)
    assert await hybrid.get("k") is None
    await other.close()


async def test_l1_never_outlives_l1_max_ttl(redis_url: str, clean_redis: object) -> None:
    clock = FakeClock()
    hybrid = HybridBackend(RedisBackend(redis_url, clock=clock), l1_max_ttl=5, clock=clock)
    await put(hybrid, "k", b"v", ttl=None)
    assert hybrid.l1._entries["k"].expires_at == pytest.approx(clock.now + 5)
    clock.advance(5)
    assert "k" not in hybrid.l1._entries or hybrid.l1._entries["k"].expired(clock.now)
    assert await hybrid.get("k") == b"v"  # from L2, promoted again for another 5 s
    await hybrid.close()


async def test_l1_carries_namespace_and_tags_for_remote_invalidations(
    hybrid: HybridBackend, redis_url: str, clock: FakeClock
) -> None:
    other = RedisBackend(redis_url, clock=clock)
    await put(other, "k", b"v", namespace="ns", tags=("t1", "t2"))
    await hybrid.get("k")  # promoted with its labels
    await hybrid._apply(json.dumps({"o": "t", "a": ["t2"]}).encode())
    assert "k" not in hybrid.l1._entries
    await other.close()


async def test_promotion_racing_an_invalidation_is_refused(
    hybrid: HybridBackend, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An L2 read that began before another process's invalidation must not fill L1."""
    await put(hybrid, "k", b"old")
    hybrid.l1._entries.clear()
    read_started, release = asyncio.Event(), asyncio.Event()
    original = hybrid.l2.get_entry

    async def slow_get_entry(key: str) -> RedisEntry | None:
        entry = await original(key)
        read_started.set()
        await release.wait()
        return entry

    monkeypatch.setattr(hybrid.l2, "get_entry", slow_get_entry)
    reader = asyncio.create_task(hybrid.get("k"))
    await read_started.wait()
    await hybrid._apply(json.dumps({"o": "k", "a": ["k"]}).encode())
    release.set()
    assert await reader == b"old"  # this read was in flight; it may return what it saw
    assert "k" not in hybrid.l1._entries  # but it must not linger in L1


async def test_a_dropped_channel_clears_and_bypasses_l1(
    hybrid: HybridBackend, redis_server: RedisServer
) -> None:
    await put(hybrid, "k", b"v")
    assert "k" in hybrid.l1._entries
    redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
    await wait_until(lambda: "k" not in hybrid.l1._entries)  # the listener noticed
    await wait_until(lambda: hybrid.coherent)  # and resubscribed by itself
    assert await hybrid.get("k") == b"v"


async def test_redis_down_at_startup_is_a_miss_not_an_error(redis_server: RedisServer) -> None:
    url = redis_server.url
    redis_server.stop()
    try:
        cache = create_cache(backend="hybrid", redis_url=url)
        assert await cache.get("k") is None
        assert await cache.set("k", 1) is False
        assert (await cache.get_stats()).errors >= 2
        await cache.close()
    finally:
        redis_server.start()


# --- invalidations queued while one process could not reach Redis -----------------------


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def cut_off(
    redis_server: RedisServer, proxy: TcpProxy, clock: FakeClock
) -> AsyncIterator[tuple[HybridBackend, HybridBackend]]:
    """Two hybrid "processes" (separate L1s) on one Redis: the first reaches L2 through the
    proxy, with short timeouts, but subscribes directly, so it stays coherent when the proxy is
    cut; the second is connected directly and keeps hearing the channel throughout."""
    through_proxy = RedisBackend(
        proxy.url, clock=clock, socket_timeout=0.1, connect_timeout=0.1, breaker_max_backoff=0.02
    )
    first = HybridBackend(through_proxy, pubsub_url=redis_server.url, clock=clock)
    second = HybridBackend(RedisBackend(redis_server.url, clock=clock), clock=clock)
    yield first, second
    await first.close()
    await second.close()


async def test_replayed_invalidations_are_announced_in_order_once_applied(
    cut_off: tuple[HybridBackend, HybridBackend], proxy: TcpProxy, redis_server: RedisServer
) -> None:
    cut, other = cut_off
    await put(cut, "k", b"v", tags=("t",))
    await put(cut, "ns:j", b"v", namespace="ns")
    await put(cut, "marker", b"v")
    for key in ("k", "ns:j", "marker"):
        assert await other.get(key) == b"v"  # promoted into the other L1
    async with aioredis.Redis.from_url(redis_server.url) as listener, listener.pubsub() as channel:
        await channel.psubscribe(f"{cut.channel}:*")  # every sender's announcements
        assert (await channel.get_message(timeout=_DEADLINE) or {}).get("type") == "psubscribe"

        proxy.cut()
        with pytest.raises(BackendUnavailable):
            await cut.invalidate_tags(["t"])
        with pytest.raises(BackendUnavailable):
            await cut.invalidate_namespace("ns")  # queued behind the first
        assert cut.l2.pending_invalidations == 2
        # This process dropped its own copies at once; it stays coherent (its subscription is
        # direct) yet serves neither from L1 while its queued invalidations wait.
        assert cut.coherent
        assert not {"k", "ns:j"} & cut.l1._entries.keys()
        with pytest.raises(BackendUnavailable):
            await cut.get("k")
        assert "k" in other.l1._entries  # the other L1 has heard nothing yet

        proxy.restore()
        assert await eventually(lambda: cut.get("unrelated")) is None  # replays first
        await cut.delete("marker")  # announced after whatever the replay announced
        # Each announcement in turn: the next one in order, and only once L2 has changed.
        for announced, gone_from_l2 in [
            ({"o": "t", "a": ["t"]}, "k"),
            ({"o": "n", "a": "ns"}, "ns:j"),
            ({"o": "k", "a": ["marker"]}, "marker"),
        ]:
            message = await channel.get_message(timeout=_DEADLINE)
            assert message is not None, f"never heard {announced}"
            heard = {k: v for k, v in orjson.loads(message["data"]).items() if k != "s"}
            assert heard == announced
            assert await other.l2.get_entry(gone_from_l2) is None

    await wait_until(lambda: "marker" not in other.l1._entries)
    assert not {"k", "ns:j"} & other.l1._entries.keys()
    assert await other.get("k") is None  # L2 was changed before the announcement
    assert await other.get("ns:j") is None


async def test_a_batch_l2_failed_partway_leaves_no_older_copy_in_any_l1(
    cut_off: tuple[HybridBackend, HybridBackend], proxy: TcpProxy
) -> None:
    cut, other = cut_off
    for key in ("a", "b"):
        await put(cut, key, b"old")
        assert await other.get(key) == b"old"  # promoted into the other L1

    proxy.drop_replies()  # Redis runs the SETs; their answers are lost, the client times out
    with pytest.raises(BackendUnavailable):
        await cut.set_many([("a", b"new"), ("b", b"new")], ttl=None, namespace=None, tags=())
    await wait_until_async(lambda: other.l2.get_entry("a"), lambda entry: entry is not None)
    # This process's copies go at once (its deletion is queued: the breaker is open)...
    assert not {"a", "b"} & cut.l1._entries.keys()
    assert cut.l2.pending_invalidations == 1

    proxy.restore()
    assert await eventually(lambda: cut.get("unrelated")) is None  # the deletion is replayed
    # ...and the other process's once the replayed deletion is announced.
    await wait_until(lambda: not {"a", "b"} & other.l1._entries.keys())
    assert await other.get("a") is None
    assert await cut.get("b") is None


async def wait_until_async(
    call: Callable[[], Awaitable[Any]], condition: Callable[[Any], bool]
) -> None:
    """Poll `call` until its result meets `condition`."""
    deadline = time.monotonic() + _DEADLINE
    while not condition(await call()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


# --- a Redis Cluster ---------------------------------------------------------------------

_CHANGES: list[tuple[Callable[[CacheService], Awaitable[object]], object]] = [
    (lambda c: c.set("k", "new", namespace="ns", tags=["t"]), "new"),
    (lambda c: c.delete("k", namespace="ns"), None),
    (lambda c: c.invalidate_namespace("ns"), None),
    (lambda c: c.invalidate_tags(["t"]), None),
    (lambda c: c.invalidate_pattern("ns:*"), None),
    (lambda c: c.clear_all(), None),
]
_CHANGE_IDS = ["overwrite", "delete", "namespace", "tags", "pattern", "clear"]
CHANGES = pytest.mark.parametrize(("change", "expected"), _CHANGES, ids=_CHANGE_IDS)


@pytest.mark.parametrize(
    ("node", "change", "expected"),
    [(number % 3, *case) for number, case in enumerate(_CHANGES)],
    ids=[f"{name}-node{number % 3}" for number, name in enumerate(_CHANGE_IDS)],
)
async def test_changes_reach_another_l1_on_a_cluster(
    redis_servers: RedisServers,
    redis_cluster_url: str,
    clean_redis: object,
    clock: FakeClock,
    node: int,
    change: Any,
    expected: object,
) -> None:
    """Classic PUBLISH reaches subscribers on every node of a cluster: the second instance
    subscribes on each of the 3 nodes in turn, so in some cases not on the node PUBLISH goes to
    (the one owning the channel's hash slot)."""
    url = "redis+cluster" + redis_cluster_url[len("redis") :]
    writer = HybridBackend(RedisBackend(url, clock=clock), clock=clock)
    reader = HybridBackend(
        RedisBackend(url, clock=clock), pubsub_url=redis_servers.cluster()[node].url, clock=clock
    )
    first, second = CacheService(writer), CacheService(reader)
    await first.set("k", "old", namespace="ns", tags=["t"])
    assert await second.get("k", namespace="ns") == "old"
    stored = storage_key("k", "ns")
    assert stored in reader.l1._entries
    await change(first)
    await wait_until(lambda: stored not in reader.l1._entries)
    assert await second.get("k", namespace="ns") == expected
    await first.close()
    await second.close()


# --- several real processes ----------------------------------------------------------


class CacheProcess:
    """A cache in a child process (tests/backends/cache_process.py)."""

    def __init__(self, backend: str, url: str, prefix: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.backends.cache_process", backend, url, prefix],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.read() == {"ready": True}

    def read(self) -> Any:
        assert self.proc.stdout is not None
        return json.loads(self.proc.stdout.readline())

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def ask(self, **command: Any) -> Any:
        self.send(**command)
        return self.read()

    def close(self) -> None:
        self.send(op="exit")
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture(scope="module")
def children(redis_url: str) -> Iterator[tuple[CacheProcess, CacheProcess]]:
    """Two processes with hybrid caches, started once for this module (starting is slow)."""
    processes = (
        CacheProcess("hybrid", redis_url, "xproc"),
        CacheProcess("hybrid", redis_url, "xproc"),
    )
    yield processes
    for process in processes:
        process.close()


@pytest.fixture
def child(children: tuple[CacheProcess, CacheProcess], clean_redis: object) -> CacheProcess:
    return children[0]


@pytest.fixture
async def parent(redis_url: str) -> AsyncIterator[CacheService]:
    cache = create_cache(backend="hybrid", redis_url=redis_url, key_prefix="xproc")
    yield cache
    await cache.close()


@CHANGES
async def test_changes_in_one_process_reach_another_processes_l1(
    parent: CacheService, child: CacheProcess, change: Any, expected: object
) -> None:
    await parent.set("k", "old", namespace="ns", tags=["t"])
    # The child may still hold the previous case's value until this write's announcement
    # arrives; once it reads "old", that value is in its L1.
    seen = await asyncio.to_thread(child.ask, op="watch", key="k", namespace="ns", until="old")
    assert "ms" in seen, seen
    await change(parent)
    answer = await asyncio.to_thread(child.ask, op="watch", key="k", namespace="ns", until=expected)
    assert "ms" in answer, answer


async def test_only_one_process_computes_a_missing_key(
    children: tuple[CacheProcess, CacheProcess], redis_url: str, clean_redis: object
) -> None:
    raw = redis.Redis.from_url(redis_url)
    first, second = children
    first.send(op="fill", key="report", counter="computed", release="go")
    while not raw.get("computed"):  # noqa: ASYNC110 - set by another process
        await asyncio.sleep(0.005)
    raw.config_resetstat()
    second.send(op="fill", key="report", counter="computed", release="go")
    # The second process tries the claim (SET NX), finds it taken, polls for the value and
    # tries again: from its second SET on it is waiting. Without the claim it would run its
    # factory now and the counter would reach 2.
    while claims(raw) < 2:  # noqa: ASYNC110 - counted by Redis for another process
        await asyncio.sleep(0.005)
    raw.set("go", 1)
    answers = [await asyncio.to_thread(p.read) for p in (first, second)]
    assert answers == [{"value": 1}, {"value": 1}]
    assert int(raw.get("computed") or 0) == 1
    raw.close()


async def test_a_value_too_big_for_l1_is_served_from_redis(
    redis_url: str, clean_redis: object, clock: FakeClock
) -> None:
    backend = HybridBackend(
        RedisBackend(redis_url, clock=clock), max_memory_bytes=10_000, clock=clock
    )
    cache = CacheService(backend)
    assert await cache.set("small", "s")
    assert await cache.set("big", "x" * 20_000)
    assert await cache.get("big") == "x" * 20_000
    assert list(backend.l1._entries) == ["small"]
    assert (await cache.get_stats()).errors == 2  # refused by L1 at the write and the read
    await cache.close()


def claims(raw: redis.Redis) -> int:
    """SET commands Redis has run since its statistics were reset."""
    stats: Any = raw.info("commandstats")
    return int(stats.get("cmdstat_set", {}).get("calls", 0))


@pytest.mark.parametrize("metadata", [b"{{{{", b'"ab"', b"1234", b"[12]"])
async def test_an_entry_with_corrupt_metadata_is_a_miss_not_an_error(
    hybrid: HybridBackend, redis_url: str, metadata: bytes
) -> None:
    from fastapi_cachekit.backends.redis.layout import HEADER_SIZE

    await put(hybrid, "k", b"v")
    await hybrid.l1.clear()  # the next read promotes from Redis
    name = hybrid.l2.layout.shard_of("k").entry("k")
    raw = redis.Redis.from_url(redis_url)
    stored = raw.get(name)
    assert isinstance(stored, bytes)
    assert stored[HEADER_SIZE : HEADER_SIZE + 4] == b'[""]'  # no namespace, no tags
    raw.set(name, stored[:HEADER_SIZE] + metadata + stored[HEADER_SIZE + 4 :])
    raw.close()
    assert await hybrid.get("k") is None
    assert (await hybrid.stats()).errors == 1
