"""How many entries each namespace and tag holds, read from the Redis indexes in bounded work.

Each shard's registry lists its indexes ("n:{ns}", "t:{tag}") scored by when their last member
expires; the live ones are read in one ZRANGEBYSCORE (at most `LABEL_SCAN` per shard) and
counted by a script, `_CHUNK` indexes per call. An index keeps members whose entries have
expired, or were removed through another of their labels, until a write or `cleanup_expired`
prunes them, so the script checks members against the entry list: every member of an index of
up to `SAMPLE` members (exact), else a random sample of `SAMPLE`, scaled to the index's size
(an estimate). A cluster sums a label's counts over its shards. The work grows with the labels
looked at, never with the entries.
"""

from __future__ import annotations

from collections import Counter

from ..base import LabelCounts, top_labels
from .connection import RedisConnection
from .layout import Layout, Shard

__all__ = ["LABEL_SCAN", "SAMPLE", "label_counts"]

LABEL_SCAN = 1000
"""Labels of one shard counted at most per call: past it the counts are marked incomplete."""
SAMPLE = 16
"""Members of an index checked against the entry list; a larger index is estimated."""
_CHUNK = 100

# KEYS: the shard's expiry list, then indexes. ARGV: now (ms), sample size. Returns, for each
# index, its live members: exact up to the sample size, else estimated from a random sample.
_COUNT = r"""
local now, sample = tonumber(ARGV[1]), tonumber(ARGV[2])
local counts = {}
for i = 2, #KEYS do
  local size = redis.call('SCARD', KEYS[i])
  local members
  if size <= sample then
    members = redis.call('SMEMBERS', KEYS[i])
  else
    members = redis.call('SRANDMEMBER', KEYS[i], sample)
  end
  local live = 0
  if #members > 0 then
    for _, s in ipairs(redis.call('ZMSCORE', KEYS[1], unpack(members))) do
      if s and (s == 'inf' or tonumber(s) > now) then live = live + 1 end
    end
    live = math.floor(size * live / #members + 0.5)
  end
  counts[i - 1] = live
end
return counts
"""

Sizes = tuple[list[tuple[str, int]], bool]


async def label_counts(
    redis: RedisConnection, layout: Layout, now_ms: float, limit: int
) -> LabelCounts:
    """The `limit` largest namespaces and tags over every shard."""

    async def on_shard(shard: Shard) -> Sizes:
        return await _shard_sizes(redis, shard, now_ms)

    totals: Counter[str] = Counter()
    complete = True
    for sizes, whole in await layout.each_shard(on_shard):
        complete = complete and whole
        for label, size in sizes:
            totals[label] += size
    return LabelCounts(
        _largest(totals, "n:", limit), _largest(totals, "t:", limit), complete=complete
    )


async def _shard_sizes(redis: RedisConnection, shard: Shard, now_ms: float) -> Sizes:
    found = await redis.command(
        "ZRANGEBYSCORE", shard.registry, f"({now_ms!r}", "+inf", "LIMIT", 0, LABEL_SCAN
    )
    labels = [label.decode() for label in found]
    sizes: list[tuple[str, int]] = []
    for first in range(0, len(labels), _CHUNK):
        chunk = labels[first : first + _CHUNK]
        keys = [shard.expiries, *(shard.prefix + label for label in chunk)]
        counts = await redis.script(_COUNT, keys, [now_ms, SAMPLE])
        sizes += zip(chunk, map(int, counts), strict=True)
    return sizes, len(labels) < LABEL_SCAN


def _largest(totals: Counter[str], kind: str, limit: int) -> tuple[tuple[str, int], ...]:
    """The `limit` largest labels of one kind ("n:" or "t:"), largest first, without the
    kind's prefix; labels with no live entry are left out."""
    sizes = (
        (label[len(kind) :], size)
        for label, size in totals.items()
        if label.startswith(kind) and size > 0
    )
    return top_labels(sizes, limit)
