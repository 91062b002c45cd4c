"""Redis memory held by the kit without a sweeper: bounded by the live entries plus a slack.

A rolling workload (every entry lives 0.4 s by the injected clock, writes 1 ms apart) writes
far more distinct keys than are ever live, and nothing calls cleanup_expired.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from fastapi_cachekit.backends.redis import RedisBackend
from tests.backends.redis_support import BackendFactory, keys
from tests.clock import FakeClock
from tests.redis_servers import RedisServers

pytestmark = pytest.mark.redis

WRITES = 6000
BATCH = 50
TTL = 0.4
LIVE = round(TTL / 0.001)  # entries live at any time, at one write per millisecond


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def raw(redis_url: str, clean_redis: RedisServers) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
async def backend(
    redis_url: str, clock: FakeClock, raw: redis.Redis
) -> AsyncIterator[RedisBackend]:
    async with BackendFactory(redis_url, False, clock) as factory:
        yield factory(socket_timeout=5, connect_timeout=5)  # a loaded test machine


async def rolling_writes(backend: RedisBackend, clock: FakeClock) -> None:
    for first in range(0, WRITES, BATCH):
        await asyncio.gather(
            *(
                backend.set(
                    f"item:{i}", b"v" * 20, ttl=TTL, namespace="items", tags=("feed", f"g{i % 8}")
                )
                for i in range(first, first + BATCH)
            )
        )
        clock.advance(BATCH * 0.001)


def held_outside_entries(raw: redis.Redis, backend: RedisBackend) -> tuple[int, dict[str, int]]:
    """Bytes (MEMORY USAGE) of the kit's keys other than entry values, and their sizes."""
    entry_prefix = backend.layout.shards[0].entry("")
    total, sizes = 0, {}
    for key in keys(raw, backend.layout.base + "*"):
        if key.startswith(entry_prefix):
            continue
        total += int(raw.memory_usage(key) or 0)
        kind = raw.type(key).decode()
        sizes[key] = int({"zset": raw.zcard, "set": raw.scard}.get(kind, lambda _k: 0)(key))
    return total, sizes


async def test_without_a_sweeper_the_entry_lists_and_indexes_stay_near_the_live_entries(
    backend: RedisBackend, raw: redis.Redis, clock: FakeClock
) -> None:
    await rolling_writes(backend, clock)
    held, sizes = held_outside_entries(raw, backend)
    print(f"\n{WRITES} writes, about {LIVE} live: {held} bytes outside entry values; {sizes}")
    shard = backend.layout.shards[0]
    # Each write drops up to TRIM expired members of the entry lists: they follow the live
    # entries; writes now and then drop the dead members they sample from an index (4 checks
    # per write on average): with three indexes per write, each settles near 4x its live ones
    # (the samples are random: seen up to 5.1x; without trimming it would be 15x).
    assert sizes[shard.expiries] <= LIVE + BATCH
    assert sizes[shard.prefix + "c"] <= LIVE + BATCH
    assert sizes[shard.index("t", "feed")] <= 6 * LIVE
    assert sizes[shard.index("n", "items")] <= 6 * LIVE
    assert held <= 1500 * LIVE  # about 5,600 bytes per live entry without trimming


async def test_stats_count_the_bytes_the_kit_holds_even_with_nothing_live(
    backend: RedisBackend, raw: redis.Redis, clock: FakeClock
) -> None:
    await backend.set("k", b"v" * 1000, ttl=1, namespace="n", tags=("t",))
    clock.advance(2)  # expired by the clock: Redis still holds its lists until trimmed
    stats = await backend.stats()
    assert stats.entries == 0
    held, _ = held_outside_entries(raw, backend)
    assert stats.memory_bytes is not None
    assert stats.memory_bytes >= held > 0
