"""The Redis backend's batch reads and writes: many keys per round trip, each meaning what the
single-key call means (`delete_many` is an invalidation: `invalidations` and `ops` own it).

- Reads are MGETs, one per shard (the keys of a shard share a slot on a cluster), at most
  `MGET_CHUNK` keys each, all in one pipeline; each value is opened as `get` opens it.
- Writes are SET_MANY script calls (`batch_scripts`), one per shard, at most `SET_MANY_CHUNK`
  entries each, all in one pipeline: each entry is checked, stored and indexed as `set` would
  (the shared work done once per call), and every call still declares all its keys and keeps
  to one slot. Entries wider than one call indexes go one by one through `set`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..base import FillToken
from .batch_scripts import SET_MANY, set_many_call
from .channel import Announcement, script_args
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

__all__ = ["MGET_CHUNK", "SET_MANY_CHUNK", "RedisBatch"]

MGET_CHUNK = 1000
"""Keys one MGET reads at most: a huge batch must not hold Redis for long in one command."""
SET_MANY_CHUNK = 100
"""Entries one SET_MANY call stores at most: a huge batch must not hold Redis for long in one
script call, nor make one call's KEYS and ARGV grow with it."""

Opened = tuple[bytes, Envelope]
Announcing = Callable[[Sequence[str]], Announcement]
"""The announcement of writes of the given keys (a tier in front of Redis: see `channel`)."""
Calls = list[tuple[Shard, list[int]]]
"""The keys of a batch by shard and chunk: each shard's positions in the batch, in order."""
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
        calls = self._calls(keys, MGET_CHUNK)
        pipe = Pipeline(self._redis)  # one shard and chunk: sent as a plain command
        for shard, part in calls:
            pipe.command("MGET", *[shard.entry(keys[i]) for i in part])
        replies = await pipe.run()
        raws: list[bytes | None] = [None] * len(keys)
        for (_, part), values in zip(calls, replies, strict=True):
            for i, value in zip(part, values, strict=True):
                raws[i] = value
        return raws

    def _calls(self, keys: Sequence[str], chunk: int) -> Calls:
        """The positions of `keys` grouped by shard, in chunks of at most `chunk`."""
        if len(self._layout.shards) == 1:
            groups = {self._layout.shards[0]: list(range(len(keys)))}
        else:
            groups = {}
            shard_of = self._layout.shard_of
            for i, key in enumerate(keys):
                groups.setdefault(shard_of(key), []).append(i)
        return [
            (shard, part[first : first + chunk])
            for shard, part in groups.items()
            for first in range(0, len(part), chunk)
        ]

    # --- writes --------------------------------------------------------------------------

    async def set_many(
        self,
        items: Sequence[tuple[str, bytes]],
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None,
        announce: Announcing | None = None,
    ) -> list[bool]:
        """`set` of each item. Entries with more labels than one script call indexes take
        several calls each (see `writes.set_wide`): those go one by one through `set`.

        `announce`: each script call publishes the announcement of its keys once it stored
        any of them (so it may name a key whose fill was refused, never one not written).
        """
        if not items:
            return []
        labels = write_labels(namespace, tags)
        if len(labels) > SET_LABELS:
            options: dict[str, Any] = {"ttl": ttl, "namespace": namespace, "tags": tags}
            return [
                await self._set(key, value, fill=fill, announce=_of(announce, [key]), **options)
                for key, value in items
            ]
        if self._replays.pending.size:
            await self._replays.replay()
        now = self._clock()
        expires_ms, px = expiry(now, ttl)
        token = b"" if fill is None else fill
        head = pack_envelope(b"", now * 1000.0, expires_ms, namespace, tags)  # shared by all
        calls = self._calls([key for key, _ in items], SET_MANY_CHUNK)
        pipe = Pipeline(self._redis)  # one shard and chunk: sent as a plain command
        for shard, part in calls:
            entries = [(items[i][0], head + items[i][1]) for i in part]
            said = script_args(_of(announce, [key for key, _ in entries]))
            pipe.script(SET_MANY, *set_many_call(shard, entries, px, token, labels, said))
        return await self._stored(items, calls, await pipe.run())

    async def _stored(
        self, items: Sequence[tuple[str, bytes]], calls: Calls, replies: list[Any]
    ) -> list[bool]:
        """Whether each item was stored, from the SET_MANY replies of `calls`, once the
        entries whose overwrite dropped labels are taken out of those indexes (`settle`)."""
        stored = [False] * len(items)
        for (shard, part), answers in zip(calls, replies, strict=True):
            for i, reply in zip(part, answers, strict=True):
                if reply.__class__ is list:  # labels the old value had: `settle` unindexes them
                    stored[i] = await settle(self._redis, shard, items[i][0], reply)
                else:  # no coroutine per key for the common replies: 1 stored, 0 refused
                    stored[i] = reply == 1
        return stored


def _of(announce: Announcing | None, keys: Sequence[str]) -> Announcement | None:
    return None if announce is None else announce(keys)
