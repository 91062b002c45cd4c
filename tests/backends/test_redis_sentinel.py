"""Redis Sentinel: the URL's forms and mistakes, the connections a backend closes, and a
failover (the primary killed, its replica promoted) under a bounded load, with its counts.

The contract suite runs on a Sentinel-managed primary too (kinds "redis-sentinel" and
"hybrid-sentinel" in tests/backend_kinds.py).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field

import pytest

from fastapi_cachekit import CacheService, ConfigurationError, create_cache
from fastapi_cachekit.backends.base import CacheBackend
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis.sentinel import SentinelAddress, primary_client
from fastapi_cachekit.errors import BackendError, BackendUnavailable
from tests.redis_servers import RedisServers, SentinelGroup, SentinelServer

# --- the URL ------------------------------------------------------------------------------


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_primarys_options() -> None:
    address = SentinelAddress.parse(
        "redis+sentinel://:secret@h1:26380,h2,[::1]:5000/mymaster/2"
        "?sentinel_password=s3&health_check_interval=10"
    )
    assert address.sentinels == [("h1", 26380), ("h2", 26379), ("::1", 5000)]
    assert address.service == "mymaster"
    assert address.primary_options == {"password": "secret", "db": 2, "health_check_interval": 10}
    assert address.sentinel_options == {"password": "s3"}


def test_rediss_sentinel_uses_tls_to_the_primary_and_to_the_sentinels() -> None:
    address = SentinelAddress.parse("rediss+sentinel://h1/mymaster?ssl_cert_reqs=none")
    assert address.primary_options == {"ssl": True, "ssl_cert_reqs": "none"}
    assert address.sentinel_options == {"ssl": True, "ssl_cert_reqs": "none"}


def test_the_urls_own_options_win_over_the_settings() -> None:
    url = "redis+sentinel://h1/mymaster?socket_timeout=2&max_connections=5"
    client = primary_client(url, {"socket_timeout": 0.5, "max_connections": 64})
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 2.0
    assert client.connection_pool.max_connections == 5


@pytest.mark.parametrize(
    ("url", "cluster", "says"),
    [
        ("redis+sentinel://h1:26379,h2:26379", False, "names the service after the sentinels"),
        ("redis+sentinel://h1:26379/mymaster/zero", False, "is a number after the service"),
        ("redis+sentinel://h1:port/mymaster", False, "'h1:port' is not a sentinel's host"),
        ("redis+sentinel://h1,,h2/mymaster", False, "'' is not a sentinel's host"),
        ("redis+sentinel://h1/mymaster?db=x", False, "Invalid value for 'db'"),
        ("redis+sentinel://h1/mymaster", True, "not a Redis Cluster"),
    ],
)
def test_a_malformed_sentinel_url_is_refused_when_the_service_is_created(
    url: str, cluster: bool, says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        create_cache(backend="redis", redis_url=url, redis_cluster=cluster)


# --- against real sentinels ---------------------------------------------------------------


def _discovery_clients(sentinel: SentinelServer) -> int:
    """Clients of this sentinel that asked it for the primary (a backend, not a peer)."""
    return sum("sentinel|masters" in line for line in _client_list(sentinel))


def _client_list(sentinel: SentinelServer) -> list[str]:
    reply = sentinel.command("CLIENT", "LIST")
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return text.splitlines()


@pytest.mark.redis
async def test_closing_the_backend_closes_its_connections_to_the_sentinels(
    redis_sentinel_url: str, redis_sentinel: SentinelGroup
) -> None:
    first = redis_sentinel.sentinels[0]
    before = _discovery_clients(first)
    backend = RedisBackend(redis_sentinel_url, key_prefix="closing")
    await backend.set("k", b"v", ttl=None, namespace=None, tags=())
    assert await backend.get("k") == b"v"
    assert _discovery_clients(first) == before + 1
    await backend.close()
    assert _discovery_clients(first) == before


@pytest.mark.redis
async def test_a_hybrid_subscription_closes_its_connections_to_the_sentinels(
    redis_sentinel_url: str, redis_sentinel: SentinelGroup
) -> None:
    first = redis_sentinel.sentinels[0]
    before = _discovery_clients(first)
    channel = RedisBackend(redis_sentinel_url, key_prefix="sub").channel("invalidations")
    async with channel.subscribe(confirm_timeout=5.0):
        assert _discovery_clients(first) == before + 1
    assert _discovery_clients(first) == before


async def test_no_sentinel_answering_is_an_unreachable_redis() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = RedisBackend(f"redis+sentinel://127.0.0.1:{port}/mymaster", key_prefix="none")
    with pytest.raises(BackendUnavailable, match="No master found for 'mymaster'"):
        await backend.get("k")
    assert backend.breaker.state == "open"
    service = CacheService(backend)
    assert await service.get("k", default="fallback") == "fallback"  # fails open
    await service.close()


# --- failover -----------------------------------------------------------------------------

_KEYS = [f"item:{number}" for number in range(20)]
_MAX_ROUNDS = 3000  # 10 ms apart: the failover (about 3 s here) has 30 s to happen
_ROUND_PAUSE = 0.01


@dataclass
class FailoverCounts:
    calls: int = 0
    failed: int = 0
    stale_reads: int = 0
    """Reads that returned a value after its invalidation had been acknowledged."""
    acknowledged: set[str] = field(default_factory=set)
    queued: set[str] = field(default_factory=set)
    """Invalidations that failed (queued for replay), not yet acknowledged."""
    seconds_to_hits: float | None = None


_FAILED = object()


async def _attempt(counts: FailoverCounts, call: Awaitable[object]) -> object:
    """The call's result, or _FAILED when the backend raised (counted)."""
    counts.calls += 1
    try:
        return await call
    except BackendError:
        counts.failed += 1
        return _FAILED


async def _round(backend: CacheBackend, counts: FailoverCounts, number: int) -> bool:
    """Invalidate one key and read it back, then write and read a probe: whether it hit."""
    key = _KEYS[number % len(_KEYS)]
    if key not in counts.acknowledged:
        if await _attempt(counts, backend.delete(key)) is _FAILED:
            counts.queued.add(key)
        else:
            counts.acknowledged.add(key)
            counts.queued.discard(key)
    value = await _attempt(counts, backend.get(key))
    if key in counts.acknowledged and isinstance(value, bytes):
        counts.stale_reads += 1
    probe = str(number).encode()
    await _attempt(counts, backend.set("probe", probe, ttl=None, namespace=None, tags=()))
    return bool(await _attempt(counts, backend.get("probe")) == probe)


def _make(kind: str, url: str, prefix: str) -> CacheBackend:
    redis_backend = RedisBackend(
        url, key_prefix=prefix, connect_timeout=0.2, socket_timeout=0.2, breaker_max_backoff=0.2
    )
    if kind == "hybrid":
        return HybridBackend(redis_backend, l1_liveness=0.6, heartbeat=0.2)
    return redis_backend


@pytest.fixture
async def failover_backends(
    request: pytest.FixtureRequest, redis_sentinel_failover: SentinelGroup
) -> AsyncIterator[tuple[CacheBackend, CacheBackend]]:
    kind = request.param
    worker, reader = (_make(kind, redis_sentinel_failover.url, "failover") for _ in range(2))
    yield worker, reader
    await worker.close()
    await reader.close()


@pytest.mark.redis
@pytest.mark.timeout(120)
@pytest.mark.parametrize("failover_backends", ["redis", "hybrid"], indirect=True)
async def test_a_failover_fails_open_then_serves_from_the_promoted_replica(
    failover_backends: tuple[CacheBackend, CacheBackend], redis_sentinel_failover: SentinelGroup
) -> None:
    worker, reader = failover_backends
    group = redis_sentinel_failover
    for key in _KEYS:
        await worker.set(key, b"before", ttl=None, namespace=None, tags=())
    old_primary = group.primary()
    # The kill comes once the replica has every write: what is measured is the kit, not the
    # window in which asynchronous replication can lose a write acknowledged just before it.
    assert old_primary.command("WAIT", 1, 5000) == 1
    service = CacheService(worker)

    old_primary.stop()  # SIGKILL
    started = time.monotonic()
    assert await service.get("item:0", default="fallback") == "fallback"  # fails open
    counts = FailoverCounts()
    for number in range(_MAX_ROUNDS):
        if await _round(worker, counts, number):
            counts.seconds_to_hits = time.monotonic() - started
            break
        await asyncio.sleep(_ROUND_PAUSE)
    assert counts.seconds_to_hits is not None, "no hit within the bounded rounds"
    assert group.primary() is not old_primary

    # The invalidations that failed were replayed on the new primary before the first call
    # that reached it returned.
    assert worker.pending_invalidations == 0
    queued = len(counts.queued)
    lost = [key for key in counts.queued if await reader.get(key) is not None]
    # Then every key is invalidated and read again, by this process and by another one.
    for number in range(len(_KEYS)):
        await _round(worker, counts, number)
    stale = [key for key in _KEYS if await reader.get(key) is not None]
    breaker = worker.l2.breaker if isinstance(worker, HybridBackend) else worker.breaker
    print(
        f"\nfailover ({type(worker).__name__}): {counts.calls} calls, {counts.failed} failed; "
        f"the breaker let {breaker.failures} attempts that failed reach the network, "
        f"{counts.stale_reads} stale reads after acknowledged invalidations, "
        f"{len(lost)} lost of the {queued} queued invalidations, back to hits after "
        f"{counts.seconds_to_hits:.2f}s"
    )
    assert counts.failed > 0  # the outage was seen, and survived
    assert counts.stale_reads == 0
    assert lost == []
    assert stale == []


# --- the fixture ---------------------------------------------------------------------------


@pytest.mark.redis
def test_a_sentinel_group_is_a_primary_a_replica_and_three_sentinels_stopped_by_pid(
    redis_servers: RedisServers,
) -> None:
    group = redis_servers.sentinel_group("selftest")
    processes = [*group.nodes, *group.sentinels]
    try:
        assert group.primary() is group.nodes[0]
        assert group.nodes[1].command("ROLE")[0] == b"slave"
        assert {6379, 26379}.isdisjoint(server.port for server in processes)
    finally:
        group.stop()
    assert not any(server.running for server in processes)
