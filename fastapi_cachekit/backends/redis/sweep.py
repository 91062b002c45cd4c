"""`cleanup_expired`: the work no write does, for one process at a time.

Writes trim a few dead members as they go (see `scripts.SET`); a sweep does the rest, shard
by shard, in bounded calls: it finishes clears and invalidations a killed process left half
done (their drains), removes the entries past their expiry, takes the entries Redis evicted
(maxmemory) out of the entry lists, and prunes the dead members of every index. A short lock
(`locks`) lets one process sweep at a time; the others skip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from ...errors import BackendError
from . import sweep_scripts as sweep_lua
from .connection import RedisConnection
from .layout import Layout, Shard, texts
from .locks import release_lock, take_lock
from .ops import CHUNK, RedisOps

__all__ = ["Sweep"]

_LOCK_MS = 30_000
"""How long a sweep may hold the lock: one that dies holding it delays the next this long."""
_INDEX_STEP = CHUNK


class Sweep:
    """The cleanup of one backend's shards (the invalidations `ops` finishes, given)."""

    def __init__(
        self,
        redis: RedisConnection,
        layout: Layout,
        ops: RedisOps,
        now_ms: Callable[[], float],
    ) -> None:
        self._redis = redis
        self._layout = layout
        self._ops = ops
        self._now_ms = now_ms

    async def run(self) -> int:
        """Sweep every shard unless another process is at it; the entries removed (0 when
        another process holds the lock)."""
        lock = self._layout.cleanup_lock
        owner = await take_lock(self._redis, lock, _LOCK_MS)
        if owner is None:
            return 0
        try:
            return sum(await self._layout.each_shard(self._sweep_shard))
        finally:
            with contextlib.suppress(BackendError):  # the lock then expires by itself
                await release_lock(self._redis, lock, owner)

    async def _sweep_shard(self, shard: Shard) -> int:
        removed = (await self._ops.finish_clear(shard))[1]
        while True:
            now = self._now_ms()
            due = await self._redis.command(
                "ZRANGEBYSCORE", shard.expiries, "-inf", now, "LIMIT", 0, CHUNK
            )
            removed += (await self._ops.remove(shard, texts(due), None, "", "expired"))[1]
            if len(due) < CHUNK:
                break
        await self._prune_missing(shard)
        cursor = 0
        while True:
            cursor, labels = await self._redis.scan(shard.registry, cursor, "*", sorted_set=True)
            for label in labels:
                await self._prune_index(shard, label)
            if cursor == 0:
                return removed

    async def _prune_index(self, shard: Shard, label: str) -> None:
        keys = [shard.prefix + label, shard.drain(label[0], label[2:])]
        keys += [shard.expiries, shard.registry]
        cursor, draining = 0, 0
        while True:
            args = [self._now_ms(), label, cursor, _INDEX_STEP]
            reply = await self._redis.script(sweep_lua.PRUNE_INDEX, keys, args)
            cursor, draining = int(reply[0]), int(reply[2])
            if cursor == 0:
                break
        if draining:  # an invalidation that was interrupted: finish it
            await self._ops.drain(shard, label)

    async def _prune_missing(self, shard: Shard) -> None:
        """Take entries that Redis evicted (maxmemory) out of the entry lists."""
        cursor = 0
        while True:
            cursor, keys = await self._redis.scan(shard.expiries, cursor, "*", sorted_set=True)
            if keys:
                declared = [shard.expiries, shard.created, *map(shard.entry, keys)]
                await self._redis.script(sweep_lua.PRUNE_MISSING, declared, keys)
            if cursor == 0:
                return
