"""Hybrid backend: L1 hits, promotion TTLs, coherence across real processes, channel loss."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from fastapi_cachekit import CacheService, create_cache
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend, RedisEntry
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

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


async def test_subscription_is_live_before_the_first_operation_returns(
    hybrid: HybridBackend, redis_url: str
) -> None:
    assert await hybrid.get("anything") is None
    assert hybrid.coherent
    raw = redis.Redis.from_url(redis_url)
    assert raw.pubsub_numsub(hybrid.channel) == [(hybrid.channel.encode(), 1)]
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
    clock.advance(20)
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
    await hybrid._apply(json.dumps({"s": "elsewhere", "o": "t", "a": ["t2"]}).encode())
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
    await hybrid._apply(json.dumps({"s": "elsewhere", "o": "k", "a": ["k"]}).encode())
    release.set()
    assert await reader == b"old"  # this read was in flight; it may return what it saw
    assert "k" not in hybrid.l1._entries  # but it must not linger in L1


async def test_a_dropped_channel_clears_and_bypasses_l1(
    hybrid: HybridBackend, redis_server: RedisServer
) -> None:
    await put(hybrid, "k", b"v")
    assert "k" in hybrid.l1._entries
    redis_server.command("CLIENT", "KILL", "TYPE", "pubsub")
    for _ in range(500):  # poll until the listener notices; it resubscribes by itself
        if "k" not in hybrid.l1._entries:
            break
        await asyncio.sleep(0.01)
    assert "k" not in hybrid.l1._entries
    for _ in range(500):
        if hybrid.coherent:
            break
        await asyncio.sleep(0.01)
    assert hybrid.coherent
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


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.set("k", "new", namespace="ns", tags=["t"]), "new"),
        (lambda c: c.delete("k", namespace="ns"), None),
        (lambda c: c.invalidate_namespace("ns"), None),
        (lambda c: c.invalidate_tags(["t"]), None),
        (lambda c: c.invalidate_pattern("ns:*"), None),
        (lambda c: c.clear_all(), None),
    ],
    ids=["overwrite", "delete", "namespace", "tags", "pattern", "clear"],
)
async def test_changes_in_one_process_reach_another_processes_l1(
    parent: CacheService, child: CacheProcess, change: Any, expected: object
) -> None:
    await parent.set("k", "old", namespace="ns", tags=["t"])
    # The child may still hold the previous case's value until this write's announcement
    # arrives; once it reads "old", that value is in its L1.
    seen = await asyncio.to_thread(child.ask, op="watch", key="ns:k", until="old")
    assert "ms" in seen, seen
    await change(parent)
    answer = await asyncio.to_thread(child.ask, op="watch", key="ns:k", until=expected)
    assert "ms" in answer, answer


async def test_only_one_process_computes_a_missing_key(
    children: tuple[CacheProcess, CacheProcess], redis_url: str, clean_redis: object
) -> None:
    raw = redis.Redis.from_url(redis_url)
    first, second = children
    first.send(op="fill", key="report", counter="computed", release="go")
    while not raw.get("computed"):  # noqa: ASYNC110 - set by another process
        await asyncio.sleep(0.005)
    second.send(op="fill", key="report", counter="computed", release="go")
    # Give the second process time to find the claim and start waiting; without the claim
    # it would run its factory now and the counter would reach 2.
    await asyncio.sleep(0.2)
    raw.set("go", 1)
    answers = [await asyncio.to_thread(p.read) for p in (first, second)]
    assert answers == [{"value": 1}, {"value": 1}]
    assert int(raw.get("computed") or 0) == 1
    raw.close()
