"""The Redis backend's invalidations, as the port names them: when each runs, and its news.

Each runs after the invalidations owed from earlier faults, or is owed itself when it fails
(`replay`); the procedure it runs is `ops`'s. Its `Announcement` (for a tier in front of
Redis) is published by the script that completes the invalidation when one can carry it,
else right after the call (`channel.publish_unsent`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ...patterns import GlobPattern
from .channel import Announcement, publish_unsent
from .connection import RedisConnection
from .faults import Invalidation
from .ops import RedisOps
from .replay import Replays

__all__ = ["RedisInvalidations"]

Perform = Callable[[Announcement | None], Awaitable[int]]


class RedisInvalidations:
    """`delete`, `delete_many`, `namespace`, `tags`, `pattern`, `clear` of one backend; each
    returns the live entries removed (`delete`: 1 or 0)."""

    def __init__(self, redis: RedisConnection, ops: RedisOps, replays: Replays) -> None:
        self._redis = redis
        self._ops = ops
        self._replays = replays

    async def delete(self, key: str, announce: Announcement | None) -> int:
        return await self._run(
            Invalidation("key", (key,)), lambda given: self._ops.delete(key, given), announce
        )

    async def delete_many(self, keys: Sequence[str], announce: Announcement | None) -> int:
        """Under one queued `Invalidation` for the batch (owed and replayed whole)."""
        if not keys:
            return 0
        names = tuple(keys)
        return await self._run(
            Invalidation("key", names), lambda given: self._ops.delete_many(names, given), announce
        )

    async def namespace(self, namespace: str, announce: Announcement | None) -> int:
        return await self._run(
            Invalidation("namespace", (namespace,)),
            lambda given: self._ops.invalidate_labels("n", (namespace,), given),
            announce,
        )

    async def tags(self, tags: Sequence[str], announce: Announcement | None) -> int:
        labels = tuple(dict.fromkeys(tags))
        if not labels:
            return 0
        return await self._run(
            Invalidation("tags", labels),
            lambda given: self._ops.invalidate_labels("t", labels, given),
            announce,
        )

    async def pattern(
        self, pattern: GlobPattern, namespace: str | None, announce: Announcement | None
    ) -> int:
        return await self._run(
            Invalidation("pattern", (pattern.source,), namespace),
            lambda _given: self._ops.invalidate_pattern(pattern, namespace),
            announce,
        )

    async def clear(self, announce: Announcement | None) -> int:
        removed = await self._replays.clear()
        await publish_unsent(self._redis, announce)
        return removed

    async def _run(
        self, invalidation: Invalidation, perform: Perform, announce: Announcement | None
    ) -> int:
        """Perform an invalidation after the queued ones (or queue it: see `replay`).

        `perform` is given `announce` to publish from the script that completes the
        invalidation. Only the first attempt carries it: a queued invalidation is announced by
        the backend's `on_replay` callback once replayed.
        """
        given = announce
        try:
            result = await self._replays.run(invalidation, lambda: perform(given))
        except BaseException:
            given = None  # queued (its replay cannot start before this line): see above
            raise
        await publish_unsent(self._redis, announce)
        return result
