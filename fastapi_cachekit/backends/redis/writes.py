"""A SET's further steps, past the one script call that stores most entries.

- A write with more labels (namespace and tags) than one SET call indexes (`SET_LABELS`) has
  the rest indexed first, by INDEX calls, then is stored by a SET that checks none of those
  labels was invalidated in between (`set_wide`).
- A SET that overwrote an entry whose labels the new value dropped answers with them: the
  entry is then taken out of their indexes (`settle`).

`set` and `set_many` call these only on those paths: the common write is one script call.
"""

from __future__ import annotations

import math

from . import scripts as lua
from .connection import RedisConnection
from .layout import Shard

__all__ = ["SET_LABELS", "set_wide", "settle"]

SET_LABELS = 64
"""Labels one SET call indexes; a write with more has the rest indexed first (INDEX calls of
`scripts.LABELS_PER_CALL`), then stored by a SET that checks none of those was invalidated
since."""
_SET_ATTEMPTS = 3


async def set_wide(
    redis: RedisConnection,
    shard: Shard,
    key: str,
    data: bytes,
    px: int | str,
    token: int | bytes,
    expires_ms: float,
    labels: list[str],
    announce: tuple[str, bytes] = lua.NO_ANNOUNCEMENT,
) -> bool:
    """Store an entry with more labels than one SET call indexes, and publish `announce`
    with it.

    Gives up (False, as for a stale fill) when the labels indexed first keep being
    invalidated before the entry is stored.
    """
    rest = labels[SET_LABELS:]
    expires = "+inf" if math.isinf(expires_ms) else repr(expires_ms)
    step = lua.LABELS_PER_CALL
    for _ in range(_SET_ATTEMPTS):
        indexed_at = None
        for first in range(0, len(rest), step):
            part = rest[first : first + step]
            declared = [shard.log_meta, shard.registry, *(shard.prefix + x for x in part)]
            last = await redis.script(lua.INDEX, declared, [key, expires, px, *part])
            indexed_at = last if indexed_at is None else indexed_at
        keys, args = lua.set_call(
            shard,
            key,
            data,
            px,
            token,
            labels,
            declared=SET_LABELS,
            indexed_at=indexed_at,
            announce=announce,
        )
        reply = await redis.script(lua.SET, keys, args)
        if reply.__class__ is list or int(reply) != -1:
            return await settle(redis, shard, key, reply)
    return False


async def settle(redis: RedisConnection, shard: Shard, key: str, reply: object) -> bool:
    """What a SET call's reply means (whether it stored), once acted upon: a list names the
    labels the old value had and the new one dropped, to take the entry out of."""
    if not isinstance(reply, list):
        return bool(reply)
    dropped = [label.decode() for label in reply]
    step = lua.LABELS_PER_CALL
    for first in range(0, len(dropped), step):
        part = dropped[first : first + step]
        keys = [shard.entry(key), *(shard.prefix + label for label in part)]
        await redis.script(lua.UNINDEX, keys, [key, *part])
    return True
