"""Short locks in Redis: a SET NX PX under a random owner, released only by that owner.

A fill's claim (`acquire_fill_lock`, one per entry, in the entry's shard) and the cleanup's
(one per key prefix) are both such locks. A holder that dies never releases its lock: it
expires by itself after its PX.
"""

from __future__ import annotations

import uuid

from .connection import RedisConnection

__all__ = ["release_lock", "take_lock"]

# KEYS: lock. ARGV: owner token. Deletes the lock only if this owner still holds it.
_RELEASE = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


async def take_lock(redis: RedisConnection, lock: str, px: int) -> str | None:
    """Take `lock` for `px` milliseconds: its owner token, or None if another holds it."""
    owner = uuid.uuid4().hex
    taken = await redis.call(lambda client: client.set(lock, owner, nx=True, px=px))
    return owner if taken else None


async def release_lock(redis: RedisConnection, lock: str, owner: str) -> None:
    """Release `lock` if `owner` still holds it (it may have expired and been taken since)."""
    await redis.script(_RELEASE, [lock], [owner])
