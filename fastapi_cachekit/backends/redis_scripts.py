"""The Lua scripts of the Redis backend: every step that must be atomic on one shard.

Each script works inside one shard (the whole database on a single node, one hash tag on a
cluster); its first argument is the shard's key prefix and the keys it touches are built from
it, so they share the shard's slot. Every script is `PRELUDE` plus a body; see `redis.py` for
the key layout and the envelope format these scripts parse.
"""

from __future__ import annotations

__all__ = [
    "CLEANUP_EXPIRED",
    "CLEAR",
    "DELETE",
    "DRAIN",
    "LOG",
    "PRUNE_INDEX",
    "PRUNE_REGISTRY",
    "PRUNE_X",
    "PURGE",
    "RELEASE_LOCK",
    "SET",
    "START_INVALIDATION",
    "STATS",
]

# Shared helpers. Envelope: "CK\1", created ms (double), expires ms (double, inf = never),
# meta length (uint32), meta (JSON array [namespace or "", tag...]), value.
_PRELUDE = r"""
local P = ARGV[1]
local LOG_CAP = 256

local function parse(v)
  if type(v) ~= 'string' or #v < 23 or string.sub(v, 1, 3) ~= 'CK\1' then return nil end
  local created, expires, size = struct.unpack('>ddI4', v, 4)
  if #v < 23 + size then return nil end
  local ok, meta = pcall(cjson.decode, string.sub(v, 24, 23 + size))
  if not ok or type(meta) ~= 'table' or type(meta[1]) ~= 'string' then return nil end
  return created, expires, meta
end

local function score(ms)
  if ms == math.huge then return '+inf' end
  return string.format('%.17g', ms)
end

local function has(meta, kind, name)
  if kind == 'n' then return meta[1] == name end
  for i = 2, #meta do
    if meta[i] == name then return true end
  end
  return false
end

local function unindex(fk, meta)
  if meta[1] ~= '' then redis.call('SREM', P .. 'n:' .. meta[1], fk) end
  for i = 2, #meta do redis.call('SREM', P .. 't:' .. meta[i], fk) end
end

-- Remove an entry with all its index memberships.
local function drop(fk, meta)
  redis.call('UNLINK', P .. 'e:' .. fk)
  redis.call('ZREM', P .. 'x', fk)
  redis.call('ZREM', P .. 'c', fk)
  if meta then unindex(fk, meta) end
end

-- Remove entry `fk` if it carries namespace/tag `name` (kind 'n'/'t'; '' = any entry).
-- Returns 1 when the removed entry was live at `now`.
local function purge(fk, now, kind, name)
  local v = redis.call('GET', P .. 'e:' .. fk)
  if not v then
    redis.call('ZREM', P .. 'x', fk)
    redis.call('ZREM', P .. 'c', fk)
    return 0
  end
  local _, expires, meta = parse(v)
  if not meta then
    if kind == '' then drop(fk, nil) end
    return 0
  end
  if kind ~= '' and not has(meta, kind, name) then return 0 end
  drop(fk, meta)
  if expires > now then return 1 end
  return 0
end

-- The invalidation sequence number: given by the caller (cluster), or the next one here.
local function sequence(given, seq_key)
  if given ~= '' then return tonumber(given) end
  return redis.call('INCR', seq_key)
end

-- Append an invalidation to the shard's capped log; remember the newest one dropped.
local function record(g, item)
  local L, M = P .. 'log', P .. 'logm'
  redis.call('LPUSH', L, g .. ' ' .. item)
  if g > tonumber(redis.call('HGET', M, 'last') or '0') then redis.call('HSET', M, 'last', g) end
  if redis.call('LLEN', L) > LOG_CAP then
    local dropped = tonumber(string.match(redis.call('RPOP', L), '^(%d+)'))
    if dropped > tonumber(redis.call('HGET', M, 'trim') or '0') then
      redis.call('HSET', M, 'trim', dropped)
    end
  end
end
"""

# Whether a logged invalidation would have removed the entry (fk, ns, tags) being filled.
_COVERS = r"""
local function covers(item, fk, ns, tags)
  local kind = item[1]
  if kind == 'c' then return true end
  if kind == 'k' then return item[2] == fk end
  if kind == 'n' then return item[2] == ns end
  if kind == 't' then
    for i = 2, #item do
      if tags[item[i]] then return true end
    end
    return false
  end
  -- 'p': [namespace or '', literal prefix]; any entry the prefix admits is covered.
  local subject = fk
  if item[2] ~= '' then
    if item[2] ~= ns then return false end
    subject = string.sub(fk, #ns + 2)
  end
  return string.sub(subject, 1, #item[3]) == item[3]
end

local function fill_ok(token, fk, ns, tags)
  local M = P .. 'logm'
  if tonumber(redis.call('HGET', M, 'last') or '0') <= token then return true end
  if tonumber(redis.call('HGET', M, 'trim') or '0') > token then return false end
  for _, raw in ipairs(redis.call('LRANGE', P .. 'log', 0, -1)) do
    local g, body = string.match(raw, '^(%d+) (.*)$')
    if tonumber(g) > token and covers(cjson.decode(body), fk, ns, tags) then return false end
  end
  return true
end
"""

# KEYS: entry. ARGV: P, fk, envelope, ttl ms ('' = none), fill token ('' = none).
# Stores the entry, moves it out of its old indexes into its new ones; 0 if the fill is stale.
SET = (
    _PRELUDE
    + _COVERS
    + r"""
local fk, v, ttl, token = ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local created, expires, meta = parse(v)
local ns, tags = meta[1], {}
for i = 2, #meta do tags[meta[i]] = true end
if token ~= '' and not fill_ok(tonumber(token), fk, ns, tags) then return 0 end

local old = redis.call('GET', KEYS[1])
if old then
  local _, _, old_meta = parse(old)
  if old_meta then unindex(fk, old_meta) end
end
if ttl then
  redis.call('SET', KEYS[1], v, 'PX', ttl)
else
  redis.call('SET', KEYS[1], v)
end
redis.call('ZADD', P .. 'x', score(expires), fk)
redis.call('ZADD', P .. 'c', score(created), fk)

-- An index lives at least as long as its longest-lived member.
local function index(kind, name)
  local key = P .. kind .. ':' .. name
  local left = redis.call('PTTL', key)
  redis.call('SADD', key, fk)
  if left == -2 then
    if ttl then redis.call('PEXPIRE', key, ttl) end
  elseif left >= 0 then
    if not ttl then
      redis.call('PERSIST', key)
    elseif ttl > left then
      redis.call('PEXPIRE', key, ttl)
    end
  end
  redis.call('SADD', P .. 'idx', kind .. ':' .. name)
end
if ns ~= '' then index('n', ns) end
for i = 2, #meta do index('t', meta[i]) end
return 1
"""
)

# KEYS: entry. ARGV: P, fk, now ms, sequence ('' = INCR seq key), seq key, log item.
# Logs the delete and removes the entry; 1 if it was live.
DELETE = (
    _PRELUDE
    + r"""
record(sequence(ARGV[4], ARGV[5]), ARGV[6])
return purge(ARGV[2], tonumber(ARGV[3]), '', '')
"""
)

# KEYS: log meta. ARGV: P, sequence ('' = INCR seq key), seq key, log item.
LOG = (
    _PRELUDE
    + r"""
record(sequence(ARGV[2], ARGV[3]), ARGV[4])
return 1
"""
)

# KEYS: log meta. ARGV: P, now ms, sequence, seq key, log item, kind ('n'/'t'), budget,
# names... Logs the invalidation; removes small indexes' entries at once and renames big
# indexes to drain keys (merged with any left over), so that entries written from now on go to
# a fresh index. Returns {removed, names left to drain...}.
START_INVALIDATION = (
    _PRELUDE
    + r"""
local now, kind, budget = tonumber(ARGV[2]), ARGV[6], tonumber(ARGV[7])
record(sequence(ARGV[3], ARGV[4]), ARGV[5])
local removed, left = 0, {}
for i = 8, #ARGV do
  local name = ARGV[i]
  local key, drain = P .. kind .. ':' .. name, P .. string.upper(kind) .. ':' .. name
  local size = redis.call('SCARD', key)
  local draining = redis.call('EXISTS', drain) == 1
  if size > 0 and size <= budget and not draining then
    budget = budget - size
    for _, fk in ipairs(redis.call('SMEMBERS', key)) do
      removed = removed + purge(fk, now, kind, name)
    end
    redis.call('DEL', key)
  else
    if size > 0 and draining then
      redis.call('SUNIONSTORE', drain, drain, key)
      redis.call('DEL', key)
    elseif size > 0 then
      redis.call('RENAME', key, drain)
    end
    if size > 0 or draining then table.insert(left, name) end
  end
end
table.insert(left, 1, removed)
return left
"""
)

# KEYS: drain key. ARGV: P, now ms, kind, name, count. Removes up to `count` members' entries.
# Returns {removed, members left}.
DRAIN = (
    _PRELUDE
    + r"""
local now, kind, name = tonumber(ARGV[2]), ARGV[3], ARGV[4]
local removed = 0
for _, fk in ipairs(redis.call('SPOP', KEYS[1], tonumber(ARGV[5]))) do
  removed = removed + purge(fk, now, kind, name)
end
return {removed, redis.call('SCARD', KEYS[1])}
"""
)

# KEYS: log meta. ARGV: P, now ms, 'start'/'more', sequence, seq key, log item, count.
# 'start' logs the clear and moves the expiry index to a drain key; each call removes up to
# `count` entries of it. Returns {removed, members left}.
CLEAR = (
    _PRELUDE
    + r"""
local now, count = tonumber(ARGV[2]), tonumber(ARGV[7])
local x, drain = P .. 'x', P .. 'X'
if ARGV[3] == 'start' then
  record(sequence(ARGV[4], ARGV[5]), ARGV[6])
  if redis.call('EXISTS', x) == 1 then
    if redis.call('EXISTS', drain) == 1 then
      redis.call('ZUNIONSTORE', drain, 2, drain, x)
      redis.call('DEL', x)
    else
      redis.call('RENAME', x, drain)
    end
  end
end
local removed = 0
local popped = redis.call('ZPOPMIN', drain, count)
for i = 1, #popped, 2 do
  removed = removed + purge(popped[i], now, '', '')
end
return {removed, redis.call('ZCARD', drain)}
"""
)

# KEYS: expiry index. ARGV: P, now ms, kind ('n' or ''), name, full keys...
# Removes the given entries (those of namespace `name` when kind is 'n'); the live count.
PURGE = (
    _PRELUDE
    + r"""
local now, kind, name = tonumber(ARGV[2]), ARGV[3], ARGV[4]
local removed = 0
for i = 5, #ARGV do removed = removed + purge(ARGV[i], now, kind, name) end
return removed
"""
)

# KEYS: expiry index. ARGV: P, now ms, count. Removes up to `count` entries expired at `now`
# (and index entries of values Redis already expired). Returns {removed, examined}.
CLEANUP_EXPIRED = (
    _PRELUDE
    + r"""
local now, count = tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', score(now), 'LIMIT', 0, count)
local removed = 0
for _, fk in ipairs(due) do
  local v = redis.call('GET', P .. 'e:' .. fk)
  local _, expires, meta = parse(v)
  if v and meta and expires > now then
    redis.call('ZADD', KEYS[1], score(expires), fk)
  else
    drop(fk, meta)
    removed = removed + 1
  end
end
return {removed, #due}
"""
)

# Removes the index members whose entry is gone or no longer carries the label.
_PRUNE_MEMBERS = r"""
local function prune(kind, name, members)
  local key, pruned = P .. kind .. ':' .. name, 0
  for _, fk in ipairs(members) do
    local _, _, meta = parse(redis.call('GET', P .. 'e:' .. fk))
    if not (meta and has(meta, kind, name)) then
      redis.call('SREM', key, fk)
      pruned = pruned + 1
    end
  end
  return pruned
end
"""

# KEYS: registry. ARGV: P, cursor, count, budget. One SSCAN step over the shard's registry of
# indexes: prunes small indexes whole, forgets indexes that no longer exist.
# Returns {cursor, pruned, {big index labels}, {labels with a drain key left over}}.
PRUNE_REGISTRY = (
    _PRELUDE
    + _PRUNE_MEMBERS
    + r"""
local budget = tonumber(ARGV[4])
local step = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local pruned, big, drains = 0, {}, {}
for _, label in ipairs(step[2]) do
  local kind, name = string.sub(label, 1, 1), string.sub(label, 3)
  local key = P .. label
  local size = redis.call('SCARD', key)
  local draining = redis.call('EXISTS', P .. string.upper(kind) .. ':' .. name) == 1
  if draining then table.insert(drains, label) end
  if size == 0 and not draining then
    redis.call('SREM', KEYS[1], label)
  elseif size > 0 and size <= budget then
    budget = budget - size
    pruned = pruned + prune(kind, name, redis.call('SMEMBERS', key))
  elseif size > 0 then
    table.insert(big, label)
  end
end
return {step[1], pruned, big, drains}
"""
)

# KEYS: index. ARGV: P, kind, name, cursor, count. One SSCAN step of pruning a big index.
# Returns {cursor, pruned}.
PRUNE_INDEX = (
    _PRELUDE
    + _PRUNE_MEMBERS
    + r"""
local step = redis.call('SSCAN', KEYS[1], ARGV[4], 'COUNT', ARGV[5])
return {step[1], prune(ARGV[2], ARGV[3], step[2])}
"""
)

# KEYS: expiry index. ARGV: P, cursor, count. One ZSCAN step removing entries that no longer
# exist (evicted by Redis' maxmemory policy). Returns {cursor, pruned}.
PRUNE_X = (
    _PRELUDE
    + r"""
local step = redis.call('ZSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local pruned = 0
for i = 1, #step[2], 2 do
  local fk = step[2][i]
  if redis.call('EXISTS', P .. 'e:' .. fk) == 0 then
    drop(fk, nil)
    pruned = pruned + 1
  end
end
return {step[1], pruned}
"""
)

# KEYS: expiry index. ARGV: P, now ms, sample size, walk limit. Returns {live entries, memory
# estimate, oldest created ms, newest created ms} (strings; '' when there are none).
STATS = (
    _PRELUDE
    + r"""
local now, sample, walk = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local x, c = KEYS[1], P .. 'c'
local live = redis.call('ZCOUNT', x, '(' .. score(now), '+inf')
if live == 0 then return {0, 0, '', ''} end

local function usage(key)
  return tonumber(redis.call('MEMORY', 'USAGE', key) or 0) or 0
end
-- Entries: exact when few (every live one), else the mean of a random sample times the count.
local exact = live <= sample
local members
if exact then
  members = redis.call('ZRANGEBYSCORE', x, '(' .. score(now), '+inf')
else
  members = redis.call('ZRANDMEMBER', x, sample)
end
local total, seen = 0, 0
for _, fk in ipairs(members) do
  local size = usage(P .. 'e:' .. fk)
  if size > 0 then total, seen = total + size, seen + 1 end
end
local memory = usage(x) + usage(c)
if exact then
  memory = memory + total
elseif seen > 0 then
  memory = memory + total / seen * live
end

-- The creation time of the first live entry from one end of the created index (scanning at
-- most `walk` entries; past that, the last one seen: an approximation).
local function first_live(command)
  local items = redis.call(command, c, 0, walk, 'WITHSCORES')
  for i = 1, #items, 2 do
    local expires = redis.call('ZSCORE', x, items[i])
    if expires and (expires == 'inf' or tonumber(expires) > now) then return items[i + 1] end
  end
  return items[#items] or ''
end
return {live, string.format('%d', memory), first_live('ZRANGE'), first_live('ZREVRANGE')}
"""
)

# KEYS: lock. ARGV: owner token. Deletes the lock only if this owner still holds it.
RELEASE_LOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
