"""The hybrid backend's invalidations: L2 first, carrying the announcement that tells the other
processes' L1s, then this process's L1.

In this order a promotion whose L2 read raced the invalidation is refused by L1's fill check
(its token was taken before the L1 invalidation): once the call returns, this process never
serves the old entry. The announcement must not come before L2 is changed, or another process
could promote the old entry again. It travels with the change: L2 is handed it (a redis
`Announcement`) and the Lua script that completes the change PUBLISHes it in the same atomic
step (the DELETE of a key, the last DELETE of a batch or the last step of a namespace or tag
invalidation on one node); where no script completes the change alone (patterns, clears, a
cluster's fan-out), L2 publishes it right after. An invalidation that could not reach Redis is
dropped from this process's L1 at once, queued by the Redis backend (which replays it as soon
as Redis answers again, without the announcement), and announced once it has been replayed
(the hybrid backend hands `Announcer.publish` to `RedisBackend.on_replay`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TypeVar

from ..patterns import GlobPattern
from .hybrid_channel import Announcer
from .memory import MemoryBackend
from .redis import Invalidation, RedisBackend

__all__ = ["HybridInvalidations"]

T = TypeVar("T")


class HybridInvalidations:
    """The invalidations of one hybrid backend: its L1, its L2, and its announcer."""

    def __init__(self, l1: MemoryBackend, l2: RedisBackend, announcer: Announcer) -> None:
        self._l1 = l1
        self._l2 = l2
        self._announcement = announcer.announcement  # for the L2 call to publish

    async def delete(self, key: str) -> bool:
        done = Invalidation("key", (key,))
        return await self._invalidate(done, self._l2.delete(key, self._announcement(done)))

    async def delete_many(self, keys: Sequence[str]) -> int:
        """As `delete`, with one announcement for the batch."""
        if not keys:
            return 0
        done = Invalidation("key", tuple(keys))
        return await self._invalidate(done, self._l2.delete_many(keys, self._announcement(done)))

    async def invalidate_namespace(self, namespace: str) -> int:
        done = Invalidation("namespace", (namespace,))
        in_l2 = self._l2.invalidate_namespace(namespace, self._announcement(done))
        return await self._invalidate(done, in_l2)

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        done = Invalidation("tags", tuple(tags))
        in_l2 = self._l2.invalidate_tags(tags, self._announcement(done))
        return await self._invalidate(done, in_l2)

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        done = Invalidation("pattern", (pattern.source,), namespace)
        in_l2 = self._l2.invalidate_pattern(pattern, namespace, self._announcement(done))
        return await self._invalidate(done, in_l2)

    async def clear(self) -> int:
        done = Invalidation("clear")
        return await self._invalidate(done, self._l2.clear(self._announcement(done)))

    async def drop_from_l1(self, done: Invalidation) -> None:
        """Apply `done` to this process's L1: its own invalidation, or one it heard of."""
        l1 = self._l1
        if done.kind == "key":
            for key in done.names:
                await l1.delete(key)
        elif done.kind == "namespace":
            await l1.invalidate_namespace(done.names[0])
        elif done.kind == "tags":
            await l1.invalidate_tags(done.names)
        elif done.kind == "pattern":
            await l1.invalidate_pattern(GlobPattern.compile(done.names[0]), done.namespace)
        else:
            await l1.clear()

    async def _invalidate(self, done: Invalidation, in_l2: Awaitable[T]) -> T:
        """L2 first, with its announcement (published when L2 succeeded: a queued
        invalidation is announced once replayed), then L1, whether L2 succeeded or queued it.

        A reader of this process that missed L1 and read the old entry from L2 took its fill
        token before the L1 invalidation, so L1 refuses its promotion; a reader that starts
        later reads L2 after the change.
        """
        try:
            return await in_l2
        finally:
            await self.drop_from_l1(done)
