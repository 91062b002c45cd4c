"""The Redis backend's batch reads and writes: many keys per round trip, each meaning what the
single-key call means (`delete_many` is an invalidation: `invalidations` and `ops` own it).

- Reads are MGETs, one per shard (the keys of a shard share a slot on a cluster), at most
  `MGET_CHUNK` keys each, all in one pipeline; each value is opened as `get` opens it.
- Writes pipeline the very SET script call `set` makes (`scripts.set_call`), one per key: the
  fill check, the indexes and the entry lists are kept by the script exactly as for `set`, and
  every call still declares all its keys and keeps to one slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..base import FillToken
from . import scripts as lua
from .connection import RedisConnection
from .layout import (
    Envelope,
    Layout,
    RedisEntry,
    Shard,
    expiry,
    open_entry,
    open_envelope,
    pack_envelope,
    write_labels,
)
from .pipeline import Pipeline
from .replay import Replays
from .writes import SET_LABELS, settle

__all__ = ["MGET_CHUNK", "RedisBatch"]

MGET_CHUNK = 1000
"""Keys one MGET reads at most: a huge batch must not hold Redis for long in one command."""

Opened = tuple[bytes, Envelope]
SingleSet = Callable[..., Awaitable[bool]]


class RedisBatch:
    """`get_many`, `get_entries` and `set_many` of one `RedisBackend` (its parts given)."""

    def __init__(
        self,
        redis: RedisConnection,
        layout: Layout,
        replays: Replays,
        clock: Callable[[], float],
        corrupt: Callable[[str], None],
        single_set: SingleSet,
    ) -> None:
        self._redis = redis
        self._layout = layout
        self._replays = replays
        self._clock = clock
        self._corrupt = corrupt
        self._set = single_set

    # --- reads ---------------------------------------------------------------------------

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        found = await self._read_many(keys)
        return [None if one is None else one[0][one[1].value_offset :] for one in found]

    async def get_entries(self, keys: Sequence[str]) -> list[RedisEntry | None]:
        """`get_entry` of each key (for a tier in front of Redis), in one round trip."""
        entries: list[RedisEntry | None] = []
        for key, found in zip(keys, await self._read_many(keys), strict=True):
            entry = None if found is None else open_entry(*found)
            if found is not None and entry is None:
                self._corrupt(key)
            entries.append(entry)
        return entries

    async def _read_many(self, keys: Sequence[str]) -> list[Opened | None]:
        if not keys:
            return []
        if self._replays.pending.size:
            await self._replays.replay()
        raws = await self._mget(keys)
        now_ms = self._clock() * 1000.0
        return [self._opened(key, raw, now_ms) for key, raw in zip(keys, raws, strict=True)]

    def _opened(self, key: str, raw: bytes | None, now_ms: float) -> Opened | None:
        """A live entry's value and envelope, as `get` opens them (a corrupt one counted)."""
        if raw is None:
            return None
        envelope = open_envelope(raw)
        if envelope is None:
            self._corrupt(key)
            return None
        return (raw, envelope) if envelope.expires_ms > now_ms else None

    async def _mget(self, keys: Sequence[str]) -> list[bytes | None]:
        """The stored value of each key's entry (None: none), one MGET per shard and chunk."""
        groups: dict[Shard, list[int]] = {}
        shard_of = self._layout.shard_of
        for i, key in enumerate(keys):
            groups.setdefault(shard_of(key), []).append(i)
        calls = [
            (shard, part[first : first + MGET_CHUNK])
            for shard, part in groups.items()
            for first in range(0, len(part), MGET_CHUNK)
        ]
        if len(calls) == 1:  # one node, one chunk: a plain command costs less than a pipeline
            shard, part = calls[0]
            replies = [await self._redis.command("MGET", *[shard.entry(keys[i]) for i in part])]
        else:
            pipe = Pipeline(self._redis)
            for shard, part in calls:
                pipe.command("MGET", *[shard.entry(keys[i]) for i in part])
            replies = await pipe.run()
        raws: list[bytes | None] = [None] * len(keys)
        for (_, part), values in zip(calls, replies, strict=True):
            for i, value in zip(part, values, strict=True):
                raws[i] = value
        return raws

    # --- writes --------------------------------------------------------------------------

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None,
    ) -> list[bool]:
        """`set` of each item. Entries with more labels than one script call indexes take
        several calls each (see `writes.set_wide`): those go one by one through `set`."""
        if not items:
            return []
        labels = write_labels(namespace, tags)
        if len(labels) > SET_LABELS:
            options: dict[str, Any] = {"ttl": ttl, "namespace": namespace, "tags": tags}
            return [await self._set(key, value, fill=fill, **options) for key, value in items]
        if self._replays.pending.size:
            await self._replays.replay()
        now = self._clock()
        expires_ms, px = expiry(now, ttl)
        token = b"" if fill is None else fill
        shards = [self._layout.shard_of(key) for key, _ in items]
        pipe = Pipeline(self._redis)
        for shard, (key, value) in zip(shards, items, strict=True):
            data = pack_envelope(value, now * 1000.0, expires_ms, namespace, tags)
            pipe.script(lua.SET, *lua.set_call(shard, key, data, px, token, labels))
        stored = []
        for shard, (key, _), reply in zip(shards, items, await pipe.run(), strict=True):
            if reply.__class__ is list:  # labels the old value had: `settle` unindexes them
                stored.append(await settle(self._redis, shard, key, reply))
            else:  # no coroutine per key for the common replies: 1 stored, 0 refused
                stored.append(reply == 1)
        return stored
