"""A Redis Cluster slot moving between masters while the cache writes, deletes and invalidates.

The test moves the slot itself (CLUSTER SETSLOT IMPORTING/MIGRATING, then MIGRATE), as
`redis-cli --cluster reshard` does, and holds it half moved for as long as the load runs:
the shard's own keys (entry lists, indexes, log) are on the new master, its entries still on
the old one. That is the state a reshard passes through for every slot it moves.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from redis.crc import key_slot

from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis.faults import CircuitBreaker
from fastapi_cachekit.errors import BackendError
from tests.backends.redis_support import index_members, open_raw
from tests.clock import FakeClock
from tests.redis_servers import RedisServer, RedisServers

pytestmark = pytest.mark.redis


class SlotMove:
    """One slot moving from `source` to `target`, step by step, as a reshard moves it."""

    def __init__(self, nodes: Sequence[RedisServer], slot: int, source: RedisServer) -> None:
        self.nodes, self.slot, self.source = nodes, slot, source
        self.target = next(node for node in nodes if node is not source)

    def begin(self) -> None:
        self.target.command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", _id(self.source))
        self.source.command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", _id(self.target))

    def remaining(self) -> list[bytes]:
        """The slot's keys still on the source."""
        return list(self.source.command("CLUSTER", "GETKEYSINSLOT", self.slot, 100_000))

    def migrate(self, keys: Sequence[bytes]) -> None:
        if keys:
            self.source.command(
                "MIGRATE", "127.0.0.1", self.target.port, "", 0, 5000, "KEYS", *keys
            )

    def finish(self) -> None:
        self.migrate(self.remaining())
        for node in (self.target, self.source, *self.nodes):
            node.command("CLUSTER", "SETSLOT", self.slot, "NODE", _id(self.target))


def _id(node: RedisServer) -> str:
    return str(node.command("CLUSTER", "MYID").decode())


def _owner(nodes: Sequence[RedisServer], slot: int) -> RedisServer:
    for first, last, master, *_ in nodes[0].command("CLUSTER", "SLOTS"):
        if first <= slot <= last:
            return next(node for node in nodes if node.port == int(master[1]))
    raise AssertionError(f"no master serves slot {slot}")


@pytest.fixture
async def backend(
    redis_servers: RedisServers, redis_cluster_url: str, clean_redis: RedisServers
) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend(redis_cluster_url, cluster=True, clock=FakeClock(), socket_timeout=5)
    yield backend
    await backend.close()


async def test_a_slot_moved_under_load_loses_no_write_and_no_invalidation(
    backend: RedisBackend, redis_servers: RedisServers, redis_cluster_url: str
) -> None:
    nodes = redis_servers.cluster()
    ticks = FakeClock()  # the breaker's time: it may open while the slot is held
    backend.redis.breaker = CircuitBreaker(5.0, monotonic=ticks)
    shard = backend.layout.shards[3]
    slot = key_slot(shard.prefix.encode())
    names = (f"user:{i}" for i in range(10_000))
    keys = [key for key in names if backend.layout.shard_of(key) == shard][:12]
    for i, key in enumerate(keys):
        await backend.set(key, b"v0", ttl=None, namespace="users", tags=(f"g{i % 3}", "all"))

    move = SlotMove(nodes, slot, _owner(nodes, slot))
    move.begin()
    entry_prefix = shard.entry("").encode()
    move.migrate([key for key in move.remaining() if not key.startswith(entry_prefix)])
    deleted, invalidated = {keys[0], keys[4]}, {"g2"}
    load = [
        backend.delete(keys[0]),
        backend.set(keys[1], b"v1", ttl=None, namespace="users", tags=("g2",)),  # a retag
        backend.set("user:new", b"v1", ttl=None, namespace="users", tags=("g0",)),
        backend.invalidate_tags(["g2"]),
        backend.delete(keys[4]),
        backend.set(keys[7], b"v1", ttl=None, namespace="users", tags=("g1", "all")),
    ]
    faults = 0
    for call in load:
        try:
            await call
        except BackendError:  # the service serves these calls without the cache
            faults += 1
    move.finish()

    ticks.advance(60)  # past any back-off: the next call replays what was queued
    await backend.get(keys[-1])
    assert backend.pending_invalidations == 0
    readable = [key for key in deleted if await backend.get(key) is not None]
    survivors = []
    raw = open_raw(redis_cluster_url, cluster=True)
    try:
        for key in [*keys, "user:new"]:
            entry = await backend.get_entry(key)
            if entry is None:
                continue
            if invalidated & set(entry.tags):
                survivors.append(key)
            for tag in entry.tags:  # never half written: stored and indexed, or neither
                assert key in index_members(raw, backend, "t", tag), (key, tag)
    finally:
        raw.close()
    assert (readable, survivors) == ([], [])
    assert await backend.invalidate_tags(["all"]) >= 1  # the moved shard works as before
    back = SlotMove(nodes, slot, move.target)  # leave the cluster as the session made it
    back.target = move.source
    back.begin()
    back.finish()


async def test_redis_cli_reshard_under_load_loses_no_invalidation(
    backend: RedisBackend, redis_servers: RedisServers, tmp_path: Path
) -> None:
    """`redis-cli --cluster reshard` moves the slots up to a shard's while writes, deletes and a
    tag invalidation run; afterwards nothing deleted is readable and nothing survives."""
    nodes = redis_servers.cluster()
    ticks = FakeClock()
    backend.redis.breaker = CircuitBreaker(5.0, monotonic=ticks)
    source = _owner(nodes, 0)
    moved = sorted(key_slot(shard.prefix.encode()) for shard in backend.layout.shards)[:1]
    shards = {s for s in backend.layout.shards if key_slot(s.prefix.encode()) in moved}
    names = (f"item:{i}" for i in range(100_000))
    keys = [key for key in names if backend.layout.shard_of(key) in shards][:150]
    doomed, deleted, written = keys[:50], keys[50:100], keys[100:]
    for key in doomed:
        await backend.set(key, b"v0", ttl=None, namespace=None, tags=("doomed",))
    for key in deleted:
        await backend.set(key, b"v0", ttl=None, namespace=None, tags=("other",))

    async def load_round() -> int:
        calls = [backend.delete(key) for key in deleted]
        calls += [backend.set(k, b"v1", ttl=None, namespace=None, tags=("live",)) for k in written]
        calls.insert(len(calls) // 2, backend.invalidate_tags(["doomed"]))
        for call in calls:
            with contextlib.suppress(BackendError):  # a miss to the service; invalidations queue
                await call
        return len(calls)

    target = next(node for node in nodes if node is not source)
    log = tmp_path / "reshard.log"
    with log.open("wb") as output:  # a file, not a pipe: nobody reads while the load runs
        reshard = await asyncio.create_subprocess_exec(
            "redis-cli", "--cluster", "reshard", f"127.0.0.1:{source.port}",
            "--cluster-from", _id(source), "--cluster-to", _id(target),
            "--cluster-slots", str(moved[-1] + 1), "--cluster-yes", "--cluster-pipeline", "1",
            stdout=output, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        calls = 0
        while reshard.returncode is None:  # the load runs for as long as the reshard does
            calls += await load_round()
            with contextlib.suppress(asyncio.TimeoutError):  # TimeoutError from 3.11 on
                await asyncio.wait_for(reshard.wait(), 0)
    assert reshard.returncode == 0, log.read_text()[-2000:]
    assert _owner(nodes, moved[-1]) is target
    print(f"\n{moved[-1] + 1} slots moved under {calls} cache calls")
    ticks.advance(60)
    await backend.get(keys[0])  # replays what was queued
    assert backend.pending_invalidations == 0
    readable = [key for key in doomed + deleted if await backend.get(key) is not None]
    assert readable == []
    live = [key for key in written if await backend.get(key) is not None]
    assert await backend.invalidate_tags(["live"]) == len(live)  # each write was indexed
