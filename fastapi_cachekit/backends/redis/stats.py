"""The Redis backend's `stats`: the hit and miss counters every process adds to, the shards'
counts, and the values found corrupt in this process.

Two round trips per shard, whatever the number of entries: a random sample of the entry list
and of the index registry, then one script (`sweep_scripts.STATS`) that counts the live
entries exactly and estimates the memory held from the sample (see the package docstring for
what is approximate). Hits and misses are one hash shared by every process of a key prefix.
"""

from __future__ import annotations

import logging
import time

from ...events import key_hash
from ..base import BackendStats
from . import sweep_scripts as sweep_lua
from .connection import Client, RedisConnection
from .layout import Layout, Shard, texts

__all__ = ["CorruptValues", "add_counters", "read_stats"]

logger = logging.getLogger("fastapi_cachekit.redis")

_LOG_INTERVAL = 60.0
_SAMPLE = 16
_WALK = 32

_ShardStats = tuple[int, int, float | None, float | None]
"""Live entries, bytes held, oldest and newest creation (ms) of one shard."""


class CorruptValues:
    """Called with the key of each value found under the prefix that is not a cachekit
    envelope (read as a miss): counts them (`stats().errors`), logs at most once a minute."""

    def __init__(self) -> None:
        self.count = 0
        self._last_log = -_LOG_INTERVAL

    def __call__(self, key: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_log >= _LOG_INTERVAL:
            self._last_log = now
            logger.warning(
                "a cache entry (key hash %s) is not a cachekit value; treated as a miss",
                key_hash(key),
                extra={"cache_key_hash": key_hash(key), "cache_outcome": "fault"},
            )


async def read_stats(
    redis: RedisConnection, layout: Layout, now_ms: float, errors: int, pending: int
) -> BackendStats:
    """The counts of `layout`'s key prefix; `errors` and `pending` are the caller's own."""

    async def on_shard(shard: Shard) -> _ShardStats:
        return await _shard_stats(redis, shard, now_ms)

    shards = await layout.each_shard(on_shard)
    key = layout.stats
    hits, misses = await redis.call(lambda client: client.hmget(key, "hits", "misses"))
    oldest = [row[2] for row in shards if row[2] is not None]
    newest = [row[3] for row in shards if row[3] is not None]
    return BackendStats(
        entries=sum(row[0] for row in shards),
        memory_bytes=sum(row[1] for row in shards),
        oldest=min(oldest) / 1000.0 if oldest else None,
        newest=max(newest) / 1000.0 if newest else None,
        hits=int(hits or 0),
        misses=int(misses or 0),
        errors=errors,
        pending_invalidations=pending,
    )


async def _shard_stats(redis: RedisConnection, shard: Shard, now_ms: float) -> _ShardStats:
    sample = texts(await redis.command("ZRANDMEMBER", shard.expiries, _SAMPLE))
    labels = texts(await redis.command("ZRANDMEMBER", shard.registry, _SAMPLE))
    keys = [*shard.structures(), *map(shard.entry, sample)]
    keys += [shard.prefix + label for label in labels]
    entries, memory, oldest, newest = await redis.script(
        sweep_lua.STATS, keys, [now_ms, _WALK, len(sample), *sample]
    )
    return int(entries), int(memory), _ms(oldest), _ms(newest)


async def add_counters(redis: RedisConnection, layout: Layout, hits: int, misses: int) -> None:
    """Add a process's hits and misses to the shared counters (one round trip)."""
    key = layout.stats

    async def add(client: Client) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(key, "hits", hits)
        pipe.hincrby(key, "misses", misses)
        await pipe.execute()

    await redis.call(add)


def _ms(value: bytes | str) -> float | None:
    return float(value) if value else None
