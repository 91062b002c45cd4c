"""The Redis backend's invalidation procedures: delete, namespaces and tags, patterns, clear.

Each works shard by shard (concurrently on a cluster) and in chunks, so that no single script
call holds Redis for more than a few milliseconds. Each is idempotent, so that an invalidation
interrupted by a fault can be replayed from the start (`replay`), or its drain finished by the
next sweep (`sweep`). When they run, and what is announced, is the backend's part
(`invalidations`); this module also hands out fill tokens, the numbers of the same sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from ...keys import pattern_covers
from ...patterns import GlobPattern
from . import invalidation_scripts as invalidation_lua
from . import sweep_scripts as sweep_lua
from .channel import Announcement, mark_sent, script_args
from .connection import RedisConnection
from .layout import Layout, Shard, texts
from .match import escape_match, server_match
from .pipeline import Pipeline
from .scripts import LABELS_PER_CALL

__all__ = ["CHUNK", "LABEL_BUDGET", "RedisOps"]

CHUNK = 100
"""Entries one script call removes (or examines) at most: keeps every call to a few
milliseconds (`python -m benchmarks.script_time`: invalidating a 100k-entry tag, about 2 ms
per call, median, on a busy 2-core VM)."""
LABEL_BUDGET = 2000
"""Labels (namespace and tags) of the entries one removal call reads at most: an entry
carrying thousands of tags costs as much as thousands of entries (`python -m
benchmarks.script_time` measures the worst case)."""


class RedisOps:
    """The invalidation procedures over every shard of a layout."""

    def __init__(self, redis: RedisConnection, layout: Layout, now_ms: Callable[[], float]):
        self._redis = redis
        self._layout = layout
        self._now_ms = now_ms

    # --- the invalidation sequence ----------------------------------------------------

    async def fill_token(self) -> int:
        """The sequence's number, or the server's time if later (invalidation_scripts.FILL_TOKEN).

        On a cluster, a sequence found missing opens every shard's log at the token, so that
        the shards do not refuse the fills that follow.
        """
        if not self._redis.cluster:
            keys = [self._layout.sequence, self._layout.shards[0].log_meta]
            token, _ = await self._redis.script(invalidation_lua.FILL_TOKEN, keys, [])
            return int(token)
        token, fresh = await self._redis.script(
            invalidation_lua.FILL_TOKEN, [self._layout.sequence], []
        )
        if int(fresh):
            await self._layout.each_shard(
                lambda shard: self._redis.script(
                    invalidation_lua.OPEN_LOG, [shard.log_meta], [token]
                )
            )
        return int(token)

    async def _sequence(self) -> int | str:
        """On a cluster, the invalidation's sequence number; on one node the script takes it
        (in the same atomic step as the log entry), so none is given."""
        if not self._redis.cluster:
            return ""
        return int(await self._redis.script(invalidation_lua.SEQUENCE, [self._layout.sequence], []))

    def _logging(self, keys: list[str]) -> list[str]:
        """`keys` of a logging script, and on one node the sequence it takes a number from."""
        return keys if self._redis.cluster else [*keys, self._layout.sequence]

    # --- invalidations ----------------------------------------------------------------

    async def delete(self, key: str, announce: Announcement | None = None) -> int:
        """Log a delete of `key`, remove its entry and publish `announce`; 1 if it was live."""
        call = self._delete_call(key, await self._sequence(), announce)
        live = await self._redis.script(invalidation_lua.DELETE, *call)
        mark_sent(announce)
        return int(live)

    async def delete_many(self, keys: Sequence[str], announce: Announcement | None = None) -> int:
        """`delete` of each key, the script calls pipelined; the live entries removed.

        On one node the last call publishes `announce`: the pipeline's calls run there in
        order, so it is heard after every delete. On a cluster they run on several nodes at
        once: `invalidations` publishes it after the pipeline.
        """
        if not keys:
            return 0
        sequence = await self._sequence()  # one number for the batch (on a cluster)
        last = announce if len(self._layout.shards) == 1 else None
        pipe = Pipeline(self._redis)
        for i, key in enumerate(keys, 1):
            call = self._delete_call(key, sequence, last if i == len(keys) else None)
            pipe.script(invalidation_lua.DELETE, *call)
        removed = sum(map(int, await pipe.run()))
        mark_sent(last)
        return removed

    def _delete_call(
        self, key: str, sequence: int | str, announce: Announcement | None
    ) -> tuple[list[str], list[Any]]:
        """The KEYS and ARGV of the DELETE script of `key`, which publishes `announce`."""
        shard = self._layout.shard_of(key)
        keys = [shard.entry(key), shard.expiries, shard.created, shard.log_meta, shard.log]
        args = [key, self._now_ms(), sequence, *script_args(announce)]
        return self._logging(keys), args

    async def invalidate_labels(
        self, kind: str, names: tuple[str, ...], announce: Announcement | None = None
    ) -> int:
        """Invalidate namespaces (kind "n") or tags ("t"); the live entries removed.

        `announce` is published by the call that completes the invalidation when there is one
        (one shard, one call's worth of labels): see `_invalidate_on`.
        """
        sequence = await self._sequence()
        labels = [f"{kind}:{name}" for name in names]
        if len(self._layout.shards) > 1 or len(labels) > LABELS_PER_CALL:
            announce = None  # no single last call: `invalidations` publishes it afterwards

        async def on_shard(shard: Shard) -> int:
            removed = 0
            for first in range(0, len(labels), LABELS_PER_CALL):
                part = labels[first : first + LABELS_PER_CALL]
                removed += await self._invalidate_on(shard, sequence, part, announce)
            return removed

        return sum(await self._layout.each_shard(on_shard))

    async def _invalidate_on(
        self, shard: Shard, sequence: int | str, labels: list[str], announce: Announcement | None
    ) -> int:
        """The invalidation's last step publishes `announce`: START_INVALIDATION when there is
        nothing to drain, else the step that finds the last drain empty. START_INVALIDATION
        hands over each drain's first chunk: a small index takes two round trips in all."""
        removed, pending, log = 0, labels, b"1"
        while pending:
            keys = [shard.log_meta, shard.log]
            for label in pending:
                keys += [shard.prefix + label, shard.drain(label[0], label[2:])]
            args = [sequence, log, *script_args(announce), CHUNK, *pending]
            found = await self._redis.script(
                invalidation_lua.START_INVALIDATION, self._logging(keys), args
            )
            steps = [
                (label, int(step), first)
                for label, (step, first) in zip(pending, found, strict=True)
            ]
            # Big indexes met while an earlier invalidation's drain was in progress: their
            # turn comes once it is empty (logged already, so not again).
            again = [label for label, step, _ in steps if step == 2]
            to_drain = [(label, first) for label, step, first in steps if step]
            if not to_drain:
                mark_sent(announce)
            for i, (label, first) in enumerate(to_drain, 1):
                last = not again and i == len(to_drain)
                removed += await self.drain(shard, label, announce if last else None, first)
            pending, log = again, b""
        return removed

    async def drain(
        self,
        shard: Shard,
        label: str,
        announce: Announcement | None = None,
        first: list[bytes] | None = None,
    ) -> int:
        """Empty the drain key of an index, CHUNK members per call, starting with `first` when
        they were read already; the live entries removed. The call that finds it empty
        publishes `announce`."""
        removed, key = 0, shard.drain(label[0], label[2:])
        members = first or await self._drain_step(key, announce)
        while members:
            live, _, drained = await self.remove(shard, texts(members), key, "s", label, announce)
            removed += live
            if drained:
                break
            members = await self._drain_step(key, announce)
        mark_sent(announce)
        return removed

    async def _drain_step(self, key: str, announce: Announcement | None) -> list[bytes]:
        """Up to CHUNK members of a drain; with `announce`, published if there are none."""
        members: list[bytes]
        if announce is None:
            members = await self._redis.command("SRANDMEMBER", key, CHUNK)
        else:
            args = [CHUNK, *announce.args]
            members = await self._redis.script(invalidation_lua.DRAIN_STEP, [key], args)
        return members

    async def remove(
        self,
        shard: Shard,
        keys: list[str],
        source: str | None,
        kind: str,
        what: str,
        announce: Announcement | None = None,
    ) -> tuple[int, int, bool]:
        """Remove the entries `keys` (those `what` selects: sweep_scripts.REMOVE) and take them
        out of `source`; (live entries removed, entries removed, whether `source`, a drain,
        is empty: then `announce` is published, once)."""
        live = removed = 0
        drained = False
        while keys and not drained:
            declared = [shard.expiries, shard.created, source or shard.expiries]
            declared += [shard.entry(key) for key in keys]
            args = [self._now_ms(), kind, what, LABEL_BUDGET, *script_args(announce), *keys]
            got, taken, done, empty = await self._redis.script(sweep_lua.REMOVE, declared, args)
            live, removed, keys = live + int(got), removed + int(taken), keys[int(done) :]
            drained = bool(empty)
        return live, removed, drained

    async def invalidate_pattern(self, pattern: GlobPattern, namespace: str | None) -> int:
        """Log the pattern on every shard, then scan, match here, and remove in batches."""
        sequence = await self._sequence()
        item = orjson.dumps([namespace or "", pattern.literal_prefix])
        await self._layout.each_shard(
            lambda shard: self._redis.script(
                invalidation_lua.LOG,
                self._logging([shard.log_meta, shard.pattern_log]),
                [sequence, item],
            )
        )
        return sum(
            await self._layout.each_shard(
                lambda shard: self._purge_matching(shard, pattern, namespace)
            )
        )

    async def _purge_matching(
        self, shard: Shard, pattern: GlobPattern, namespace: str | None
    ) -> int:
        # The pattern applies to full keys, which begin stored keys (keys.storage_key): the
        # trailing "*" admits what follows them.
        if namespace is None:
            source, match, what = shard.expiries, server_match(pattern) + "*", ""
        else:  # the namespace's own index; the pattern applies to keys within it
            source = shard.index("n", namespace)
            match = escape_match(namespace) + ":" + server_match(pattern) + "*"
            what = f"n:{namespace}"
        removed, cursor = 0, 0
        while True:
            cursor, members = await self._redis.scan(
                source, cursor, match, sorted_set=namespace is None
            )
            keys = [key for key in members if pattern_covers(pattern, namespace, key, namespace)]
            for first in range(0, len(keys), CHUNK):  # a scan step may find more than CHUNK
                part = keys[first : first + CHUNK]
                removed += (await self.remove(shard, part, None, "", what))[0]
            if cursor == 0:
                return removed

    async def clear(self) -> int:
        """Log a clear and remove every entry of every shard; the live entries removed."""
        sequence = await self._sequence()

        async def on_shard(shard: Shard) -> int:
            removed, log = 0, b"1"
            keys = [shard.log_meta, shard.log, shard.expiries, shard.clearing]
            while True:
                step = int(
                    await self._redis.script(
                        invalidation_lua.START_CLEAR, self._logging(keys), [sequence, log]
                    )
                )
                if step:
                    removed += (await self.finish_clear(shard))[0]
                if step != 2:
                    return removed
                # The entry list could not join a drain left by another clear: now it can.
                log = b""

        return sum(await self._layout.each_shard(on_shard))

    async def finish_clear(self, shard: Shard) -> tuple[int, int]:
        """Empty the drain of a clear; (live entries removed, entries removed)."""
        live = removed = 0
        while members := await self._redis.command("ZRANGE", shard.clearing, 0, CHUNK - 1):
            got, taken, _ = await self.remove(shard, texts(members), shard.clearing, "z", "")
            live, removed = live + got, removed + taken
        return live, removed
