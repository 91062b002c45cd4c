"""The Lua scripts of the Redis backend: every step that must be atomic on one shard.

Each script works inside one shard (the whole database on a single node, one hash tag on a
cluster) and declares every key it touches in KEYS, so that while a slot moves between nodes
Redis checks them all before the script starts: it answers ASK or TRYAGAIN (the client
retries) instead of failing half way through. Keys that depend on stored data (the entries of
an index, the old indexes of an overwritten entry) are read first, by the caller, and declared
in a second call that checks they still apply. Removing an entry touches its value, the entry
lists and the index being invalidated, never its other indexes: those keep a dead member that
writes trim (see SET), so a script's work is bounded by the entries it is given, whatever the
number of tags they carry. See `layout.py` for the key layout and the envelope format.

This module has the shared helpers and the write path; `batch_scripts` stores a batch's
entries, `invalidation_scripts` logs and starts invalidations, `sweep_scripts` removes
entries in chunks, prunes and reads stats.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .layout import Shard

__all__ = [
    "DROPPED",
    "FILL_OK",
    "HELPERS",
    "INDEX",
    "INDEXING",
    "LABELS_PER_CALL",
    "LOG_CAP",
    "NO_ANNOUNCEMENT",
    "SAMPLE",
    "SAMPLE_EVERY",
    "SET",
    "TRIM",
    "UNINDEX",
    "set_call",
]

NO_ANNOUNCEMENT: tuple[str, bytes] = ("", b"")
"""The channel and message of a script call that publishes nothing."""

LOG_CAP = 1024
"""Labels each shard's invalidation log keeps: a fill that outlasts this many distinct labels
invalidated on its shard is refused (it can no longer be shown safe)."""
TRIM = 4
"""Dead members of the entry lists and the registry that each write removes at most."""
SAMPLE = 16
SAMPLE_EVERY = 4
"""One write in SAMPLE_EVERY checks SAMPLE members of one of its indexes, removing the dead
ones: 4 checks per write on average, so an index settles at about 4 times its live members
when each write touches three indexes (about 1.3 times with one)."""
LABELS_PER_CALL = 100
"""Labels one INDEX, UNINDEX or START_INVALIDATION call names at most, so that no call's
KEYS grow with the labels of one write or one invalidation."""

# Shared helpers. Envelope: "CK\1", created ms (double), expires ms (double, inf = never),
# meta length (uint32), meta (JSON array [namespace or "", tag...]), value.
HELPERS = (
    r"""
local LOG_CAP = {log_cap}
local TRIM = {trim}
local SAMPLE = {sample}
local SAMPLE_EVERY = {sample_every}

local function int(n)
  return string.format('%d', n)
end

local function score(ms)
  if ms == math.huge then return '+inf' end
  return string.format('%.17g', ms)
end

local function parse(v)
  if type(v) ~= 'string' or #v < 23 or string.sub(v, 1, 3) ~= 'CK\1' then return nil end
  local created, expires, size = struct.unpack('>ddI4', v, 4)
  if #v < 23 + size then return nil end
  local ok, meta = pcall(cjson.decode, string.sub(v, 24, 23 + size))
  if not ok or type(meta) ~= 'table' or type(meta[1]) ~= 'string' then return nil end
  return created, expires, meta
end

local function has(meta, label)
  local kind, name = string.sub(label, 1, 1), string.sub(label, 3)
  if kind == 'n' then return meta[1] == name end
  for i = 2, #meta do
    if meta[i] == name then return true end
  end
  return false
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- The members of `members` that are not live entries of the expiry index `x` at `now`.
local function dead(x, members, now)
  if #members == 0 then return {} end
  local found, scores = {}, redis.call('ZMSCORE', x, unpack(members))
  for i, s in ipairs(scores) do
    if not s or tonumber(s) <= now then found[#found + 1] = members[i] end
  end
  return found
end
""".replace("{log_cap}", str(LOG_CAP))
    .replace("{trim}", str(TRIM))
    .replace("{sample}", str(SAMPLE))
    .replace("{sample_every}", str(SAMPLE_EVERY))
)

# Whether the fill of entry fk (namespace ns, labels) with `token` may be stored. A missing
# log meta means the log was lost after the token was taken: refused, and opened again.
FILL_OK = r"""
local function covers(item, fk, ns)
  local subject = fk
  if item[1] ~= '' then
    if item[1] ~= ns then return false end
    subject = string.sub(fk, #ns + 2)
  end
  return string.sub(subject, 1, #item[2]) == item[2]
end

local function fill_ok(logm, log, patterns, token, fk, ns, labels)
  local meta = redis.call('HMGET', logm, 'since', 'last')
  if not meta[1] then
    redis.call('HSET', logm, 'since', int(now_us()))
    return false
  end
  if tonumber(meta[1]) > token then return false end
  if tonumber(meta[2] or '0') <= token then return true end
  local scores = redis.call('ZMSCORE', log, '*', 'k:' .. fk, unpack(labels))
  for i = 1, #scores do
    if scores[i] and tonumber(scores[i]) > token then return false end
  end
  for _, item in ipairs(redis.call('ZRANGEBYSCORE', patterns, '(' .. int(token), '+inf')) do
    if covers(cjson.decode(item), fk, ns) then return false end
  end
  return true
end
"""

# Indexing an entry: a structure lives at least as long as its longest-lived member, so a
# write that outlives it extends it, with 1/16 of the TTL on top so that the writes that
# follow need not extend it again (`left`: its PTTL before the write, -2 when new). The
# registry lists every index by when its last member expires.
INDEXING = r"""
local function outlive(key, left, ttl, px)
  if left == -2 then
    if ttl then redis.call('PEXPIRE', key, px) end
  elseif left >= 0 then
    if not ttl then
      redis.call('PERSIST', key)
    elseif ttl > left then
      redis.call('PEXPIRE', key, int(ttl + math.floor(ttl / 16)))
    end
  end
end

-- Adds the full keys `fks` to the index KEYS[offset + i] of each labels[i], i in first..last,
-- with one SADD per index. An index that is new, or that this write outlives, is
-- (re)registered with the write's expiry (the registry then drops up to TRIM indexes past
-- theirs). With `x` (the expiry index), the indexes (in turn, by `now`) drop the dead members
-- among SAMPLE of their members, now and then: one write in SAMPLE_EVERY (by the server's
-- clock), so that most writes do no more than they must, whether they come alone or many in
-- one call.
local function index_all(offset, labels, first, last, fks, expires, px, registry, x, now)
  local ttl, count, scores = tonumber(px), last - first + 1, {}
  if count <= 0 then return end
  local draws = 0
  if x then
    draws = math.floor(#fks / SAMPLE_EVERY)
    if now_us() % SAMPLE_EVERY < #fks % SAMPLE_EVERY then draws = draws + 1 end
  end
  local start = math.floor(now) % count
  for i = first, last do
    local key = KEYS[offset + i]
    local left = redis.call('PTTL', key)
    -- The draws dealt to this index, dealt one per index in turn from `start`.
    local turn = (i - first - start) % count
    if turn < draws then
      local n = math.floor((draws - turn - 1) / count) + 1
      -- A negative count may repeat a member: Redis then needs no set to rule repeats out.
      local found = dead(x, redis.call('SRANDMEMBER', key, -SAMPLE * n), now)
      if #found > 0 then redis.call('SREM', key, unpack(found)) end
    end
    redis.call('SADD', key, unpack(fks))
    if left == -2 or (left >= 0 and (not ttl or ttl > left)) then
      outlive(key, left, ttl, px)
      scores[#scores + 1] = expires
      scores[#scores + 1] = labels[i]
    end
  end
  if #scores > 0 then
    local gone = redis.call('ZRANGEBYSCORE', registry, '-inf', score(now), 'LIMIT', 0, TRIM)
    if #gone > 0 then redis.call('ZREM', registry, unpack(gone)) end
    local left = redis.call('PTTL', registry)
    redis.call('ZADD', registry, 'GT', unpack(scores))
    outlive(registry, left, ttl, px)
  end
end
"""

# The labels an overwritten value `old` had that the new one (its meta length and meta,
# `meta`: envelope bytes 20 to 23 + size) dropped: none when the meta is the same, byte for
# byte, as it is for most overwrites.
DROPPED = r"""
local function dropped_labels(old, meta, labels)
  local dropped = {}
  if not old or string.sub(old, 20, 19 + #meta) == meta then return dropped end
  local _, _, old_meta = parse(old)
  if not old_meta then return dropped end
  local kept = {}
  for _, label in ipairs(labels) do kept[label] = true end
  if old_meta[1] ~= '' and not kept['n:' .. old_meta[1]] then
    dropped[#dropped + 1] = 'n:' .. old_meta[1]
  end
  for i = 2, #old_meta do
    if not kept['t:' .. old_meta[i]] then dropped[#dropped + 1] = 't:' .. old_meta[i] end
  end
  return dropped
end
"""

# KEYS: log meta, registry, then the index of each label. ARGV: full key, expiry score, ttl ms
# ('' = none), labels. Adds the entry to the indexes of the labels of a write that has more of
# them than one SET call indexes (a SET follows). Returns a number every later invalidation
# of the shard exceeds (its last one, or its log's start if later): the SET refuses when a
# label was logged past it, or when the log lost entries past it.
INDEX = (
    HELPERS
    + INDEXING
    + r"""
local labels = {}
for i = 4, #ARGV do labels[#labels + 1] = ARGV[i] end
-- A shard without a log opens one: the SET then knows that none was lost meanwhile.
redis.call('HSETNX', KEYS[1], 'since', int(now_us()))
local meta = redis.call('HMGET', KEYS[1], 'since', 'last')
local last = int(math.max(tonumber(meta[1]), tonumber(meta[2] or '0')))
index_all(2, labels, 1, #labels, {ARGV[1]}, ARGV[2], ARGV[3], KEYS[2], nil, 0)
return last
"""
)

# KEYS: entry, expiry index, created index, the index of each of the first `declared` labels,
# the registry if `declared` > 0, then log meta, log and pattern log if a fill token or an
# `indexed at` is given: only what the call touches, as the client packs every argument.
# ARGV: envelope, ttl ms ('' = none), declared, then fill token, channel, message, indexed at
# ('' = none; those at the end left out when empty), the labels past `declared`. The full key
# and the declared labels ('n:{ns}' first if any, then 't:{tag}'...) are read off their keys.
# `set_call` lays them out. Stores the entry, indexes it and publishes the message (a hybrid
# tier's announcement: in this step, so it costs no round trip and never comes before the
# write); the labels past `declared` were indexed by INDEX calls, which returned `indexed
# at`. Returns 0 if the fill is stale, -1 if one of those labels was invalidated since (the
# caller starts again), 1, or the labels of the old value that the new one dropped (the
# caller takes the entry out of those indexes).
SET = (
    HELPERS
    + FILL_OK
    + INDEXING
    + DROPPED
    + r"""
local v, px, declared = ARGV[1], ARGV[2], tonumber(ARGV[3])
local token, channel, message, indexed_at = ARGV[4] or '', ARGV[5] or '', ARGV[6], ARGV[7] or ''
local x, c = KEYS[2], KEYS[3]
local prefix = #x - 1  -- the shard's prefix, then 'x'
local fk = string.sub(KEYS[1], prefix + 3)  -- after the prefix and 'e:'
local labels, ns = {}, ''
for i = 1, declared do labels[i] = string.sub(KEYS[3 + i], prefix + 1) end
for i = 8, #ARGV do labels[#labels + 1] = ARGV[i] end
local registry = KEYS[4 + declared]
local logs = 3 + declared + (declared > 0 and 1 or 0)
local logm, log = KEYS[logs + 1], KEYS[logs + 2]
local created, expires, size = struct.unpack('>ddI4', v, 4)
if labels[1] and string.sub(labels[1], 1, 2) == 'n:' then ns = string.sub(labels[1], 3) end
if token ~= '' and not fill_ok(logm, log, KEYS[logs + 3], tonumber(token), fk, ns, labels) then
  return 0
end
if indexed_at ~= '' then
  local since = redis.call('HGET', logm, 'since')
  if not since or tonumber(since) > tonumber(indexed_at) then return -1 end
  local rest = {}
  for i = declared + 1, #labels do rest[#rest + 1] = labels[i] end
  for _, s in ipairs(redis.call('ZMSCORE', log, unpack(rest))) do
    if s and tonumber(s) > tonumber(indexed_at) then return -1 end
  end
end

local old
if px ~= '' then
  old = redis.call('SET', KEYS[1], v, 'PX', px, 'GET')
else
  old = redis.call('SET', KEYS[1], v, 'GET')
end
local dropped = dropped_labels(old, string.sub(v, 20, 23 + size), labels)

-- Each write drops up to TRIM members of the entry lists that expired (their values are
-- gone with Redis' own expiry), so that the lists hold the live entries plus a few; the
-- registry and the indexes are trimmed likewise (see index_all).
local ttl = tonumber(px)
local expired = redis.call('ZRANGEBYSCORE', x, '-inf', score(created), 'LIMIT', 0, TRIM)
if #expired > 0 then
  redis.call('ZREM', x, unpack(expired))
  redis.call('ZREM', c, unpack(expired))
end
local left = redis.call('PTTL', x)
redis.call('ZADD', x, expires, fk)
outlive(x, left, ttl, px)
left = redis.call('PTTL', c)
redis.call('ZADD', c, int(created), fk)
outlive(c, left, ttl, px)
index_all(3, labels, 1, declared, {fk}, score(expires), px, registry, x, created)
if channel ~= '' then redis.call('PUBLISH', channel, message) end
if #dropped > 0 then return dropped end
return 1
"""
)


def set_call(
    shard: Shard,
    key: str,
    data: bytes,
    px: int | str,
    token: int | bytes,
    labels: Sequence[str],
    *,
    declared: int | None = None,
    indexed_at: Any = b"",
    announce: tuple[str, bytes] = NO_ANNOUNCEMENT,
) -> tuple[list[str], list[Any]]:
    """The KEYS and ARGV of one SET call of entry `key` in `shard`, for a client or a pipeline
    alike (`EVALSHA sha len(keys) *keys *args`).

    `data`: the envelope; `px`: Redis' expiry in ms ('' = none); `token`: the fill token (b''
    = none); `labels`: 'n:{ns}' first if any, then 't:{tag}'..., of which the first `declared`
    (all by default) are indexed by this call, the rest by INDEX calls that returned
    `indexed_at`; `announce`: the channel and message to publish once stored.
    """
    count = len(labels) if declared is None else declared
    prefix = shard.prefix
    keys = [shard.entry(key), shard.expiries, shard.created]
    if count:
        keys += [prefix + label for label in labels[:count]]
        keys.append(shard.registry)
    if token or indexed_at:
        keys += [shard.log_meta, shard.log, shard.pattern_log]
    optional = [token, *announce, indexed_at, *labels[count:]]
    while optional and not optional[-1]:  # the script reads what is left out as ''
        optional.pop()
    return keys, [data, px, count, *optional]


# KEYS: entry, then the index of each label. ARGV: full key, labels. Takes the entry out of
# the indexes of the labels its value no longer carries.
UNINDEX = (
    HELPERS
    + r"""
local _, _, meta = parse(redis.call('GET', KEYS[1]))
for i = 2, #ARGV do
  if not (meta and has(meta, ARGV[i])) then redis.call('SREM', KEYS[i], ARGV[1]) end
end
return 1
"""
)
