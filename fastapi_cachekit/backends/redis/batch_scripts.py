"""The Lua of `set_many` on Redis: many entries of one shard stored in one script call.

The entries of a `set_many` share their TTL, namespace and tags (so their labels), fill token
and created and expiry times. SET_MANY does per entry only what differs between them (the fill
check, which names the entry's key; the SET; the labels an overwrite dropped), and the rest
once for all of them: the entry lists' trim and one ZADD each, one SADD per index, the
registry. Each entry ends as `scripts.SET` would leave it, and the upkeep each write owes
(trimming dead members, sampling the indexes) is done at the same rate per entry. Like every
script, it declares all its keys, which share the shard's slot (see `scripts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .layout import Shard
from .scripts import DROPPED, FILL_OK, HELPERS, INDEXING, NO_ANNOUNCEMENT

__all__ = ["SET_MANY", "set_many_call"]

# KEYS: the shard's write keys (expiry index, created index, registry, log meta, log, pattern
# log), the index of each label, then the entry of each item. ARGV: ttl ms ('' = none), fill
# token ('' = none), channel and message ('' = none), the number of labels, the labels
# ('n:{ns}' first if any, then 't:{tag}'...), then the full key and envelope of each item.
# `set_many_call` lays them out. Returns one reply per item, in order: 0 if its fill is stale
# (not stored), 1, or the labels of the old value that the new one dropped (the caller takes
# the entry out of those indexes). The message is published once, if anything was stored.
SET_MANY = (
    HELPERS
    + FILL_OK
    + INDEXING
    + DROPPED
    + r"""
local px, token, count = ARGV[1], ARGV[2], tonumber(ARGV[5])
local x, c, registry, logm, log, patterns = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local labels, ns = {}, ''
for i = 1, count do labels[i] = ARGV[5 + i] end
if labels[1] and string.sub(labels[1], 1, 2) == 'n:' then ns = string.sub(labels[1], 3) end
local first = 6 + count  -- ARGV of the first item; KEYS[first + i] is the entry of item i
local created, expires, size = struct.unpack('>ddI4', ARGV[first + 1], 4)
local meta = string.sub(ARGV[first + 1], 20, 23 + size)  -- the same in every envelope
local fill = token ~= '' and tonumber(token)

local replies, stored = {}, {}
for i = 1, (#ARGV - first + 1) / 2 do
  local fk, v = ARGV[first + 2 * i - 2], ARGV[first + 2 * i - 1]
  if fill and not fill_ok(logm, log, patterns, fill, fk, ns, labels) then
    replies[i] = 0
  else
    local old
    if px ~= '' then
      old = redis.call('SET', KEYS[first + i], v, 'PX', px, 'GET')
    else
      old = redis.call('SET', KEYS[first + i], v, 'GET')
    end
    local dropped = dropped_labels(old, meta, labels)
    if #dropped > 0 then replies[i] = dropped else replies[i] = 1 end
    stored[#stored + 1] = fk
  end
end
if #stored == 0 then return replies end

-- As SET does for each write: up to TRIM expired members of the entry lists per entry stored.
local ttl = tonumber(px)
local expired = redis.call('ZRANGEBYSCORE', x, '-inf', score(created), 'LIMIT', 0,
  TRIM * #stored)
if #expired > 0 then
  redis.call('ZREM', x, unpack(expired))
  redis.call('ZREM', c, unpack(expired))
end
-- The scores as strings, made once: Redis would format a Lua number again for each member.
local by_expiry, by_creation, at, born = {}, {}, score(expires), int(created)
for i, fk in ipairs(stored) do
  by_expiry[2 * i - 1], by_expiry[2 * i] = at, fk
  by_creation[2 * i - 1], by_creation[2 * i] = born, fk
end
local left = redis.call('PTTL', x)
redis.call('ZADD', x, unpack(by_expiry))
outlive(x, left, ttl, px)
left = redis.call('PTTL', c)
redis.call('ZADD', c, unpack(by_creation))
outlive(c, left, ttl, px)
index_all(6, labels, 1, count, stored, at, px, registry, x, created)
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return replies
"""
)


def set_many_call(
    shard: Shard,
    items: Sequence[tuple[str, bytes]],
    px: int | str,
    token: int | bytes,
    labels: Sequence[str],
    announce: tuple[str, bytes] = NO_ANNOUNCEMENT,
) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of one SET_MANY call storing `items` (full key, envelope) of `shard`,
    for a client or a pipeline alike (`EVALSHA sha len(keys) *keys *args`).

    The envelopes must share their created and expiry times and their labels; `px`: Redis'
    expiry in ms ('' = none); `token`: the fill token (b'' = none); `labels`: 'n:{ns}' first
    if any, then 't:{tag}'...; `announce`: the channel and message to publish once stored.
    """
    prefix = shard.prefix
    keys = [*shard.write_keys, *(prefix + label for label in labels)]
    keys += [shard.entry(key) for key, _ in items]
    args: list[Any] = [px, token, *announce, len(labels), *labels]
    for pair in items:
        args += pair
    return keys, args
