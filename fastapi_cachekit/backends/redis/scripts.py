"""The Lua scripts of the Redis backend: every step that must be atomic on one shard.

Each script works inside one shard (the whole database on a single node, one hash tag on a
cluster); its first argument is the shard's key prefix and the keys it touches are built from
it, so they share the shard's slot. Every script is `_PRELUDE` (SET: only the helpers it uses)
plus a body; see `backend.py` and `layout.py` for the key layout and the envelope format
these scripts parse.
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

# Shared helpers, in pieces so that the hot SET script defines only the few it uses (each
# `local function` costs a closure on every call). Envelope: "CK\1", created ms (double),
# expires ms (double, inf = never), meta length (uint32), meta (JSON array [namespace or "",
# tag...]), value.
_BASE = r"""
local P = ARGV[1]
local LOG_CAP = 256
"""

_PARSE = r"""
local function parse(v)
  if type(v) ~= 'string' or #v < 23 or string.sub(v, 1, 3) ~= 'CK\1' then return nil end
  local created, expires, size = struct.unpack('>ddI4', v, 4)
  if #v < 23 + size then return nil end
  local ok, meta = pcall(cjson.decode, string.sub(v, 24, 23 + size))
  if not ok or type(meta) ~= 'table' or type(meta[1]) ~= 'string' then return nil end
  return created, expires, meta
end

local function unindex(fk, meta)
  if meta[1] ~= '' then redis.call('SREM', P .. 'n:' .. meta[1], fk) end
  for i = 2, #meta do redis.call('SREM', P .. 't:' .. meta[i], fk) end
end
"""

_HELPERS = r"""
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

-- `command` (key, ...items) in slices: Lua's unpack() has a limit on how many values it takes.
local function each_slice(command, key, items)
  for first = 1, #items, 1000 do
    local last = math.min(first + 999, #items)
    if key then
      redis.call(command, key, unpack(items, first, last))
    else
      redis.call(command, unpack(items, first, last))
    end
  end
end

-- The values of the entries `fks` (false where missing): one MGET per 1000.
local function values(fks)
  if #fks <= 1000 then
    if #fks == 0 then return {} end
    local keys = {}
    for i, fk in ipairs(fks) do keys[i] = P .. 'e:' .. fk end
    return redis.call('MGET', unpack(keys))
  end
  local found = {}
  for first = 1, #fks, 1000 do
    local part = {}
    for i = first, math.min(first + 999, #fks) do part[#part + 1] = fks[i] end
    for _, v in ipairs(values(part)) do found[#found + 1] = v end
  end
  return found
end

-- Removals are collected first (`remove`), then sent as one command per key they touch
-- (`apply`): a chunk of entries costs a handful of calls, not several per entry.
local function removals()
  return {entries = {}, listed = {}, labels = {}}
end

-- Remove entry `fk` (its value, its places in the entry lists, and, when its meta is known,
-- its namespace/tag index memberships).
local function remove(r, fk, meta)
  r.entries[#r.entries + 1] = P .. 'e:' .. fk
  r.listed[#r.listed + 1] = fk
  if not meta then return end
  for i = 1, #meta do
    local label
    if i == 1 then
      if meta[1] ~= '' then label = 'n:' .. meta[1] end
    else
      label = 't:' .. meta[i]
    end
    if label then
      local fks = r.labels[label]
      if not fks then
        fks = {}
        r.labels[label] = fks
      end
      fks[#fks + 1] = fk
    end
  end
end

local function apply(r)
  each_slice('UNLINK', nil, r.entries)
  each_slice('ZREM', P .. 'x', r.listed)
  each_slice('ZREM', P .. 'c', r.listed)
  for label, fks in pairs(r.labels) do each_slice('SREM', P .. label, fks) end
end

-- Remove the entries `fks` that carry namespace/tag `name` (kind 'n'/'t'; '' = any entry);
-- missing ones leave the entry lists. Returns how many of the removed entries were live.
local function purge(fks, now, kind, name)
  local r, seen, removed = removals(), {}, 0
  for i, v in ipairs(values(fks)) do
    local fk = fks[i]
    if not seen[fk] then
      seen[fk] = true
      if not v then
        r.listed[#r.listed + 1] = fk
      else
        local _, expires, meta = parse(v)
        if not meta then
          if kind == '' then remove(r, fk, nil) end
        elseif kind == '' or has(meta, kind, name) then
          remove(r, fk, meta)
          if expires > now then removed = removed + 1 end
        end
      end
    end
  end
  apply(r)
  return removed
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

_PRELUDE = _BASE + _PARSE + _HELPERS

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

# KEYS: entry. ARGV: P, envelope, ttl ms ('' = none), fill token ('' = none), namespace ('' =
# none), tags... (the labels, as in the envelope's meta). Stores the entry, moves it out of its
# old indexes into its new ones; 0 if the fill is stale. The hot write: it reads the old value
# in the same SET (GET option), and parses it only when its labels differ from the new ones.
SET = (
    _BASE
    + _PARSE
    + r"""
local v, ttl, token, ns = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local fk = string.sub(KEYS[1], #P + 3)
local created, expires, size = struct.unpack('>ddI4', v, 4)
if token ~= '' then
"""
    + _COVERS
    + r"""
  local tags = {}
  for i = 6, #ARGV do tags[ARGV[i]] = true end
  if not fill_ok(tonumber(token), fk, ns, tags) then return 0 end
end

local old
if ttl then  -- ARGV[3], the string: a Lua number would be formatted again on every call
  old = redis.call('SET', KEYS[1], v, 'PX', ARGV[3], 'GET')
else
  old = redis.call('SET', KEYS[1], v, 'GET')
end
-- Out of the old indexes, unless the old labels are the new ones (meta length and meta, byte
-- for byte: then it stays a member of the same indexes).
if old then
  local last = 23 + size
  if string.sub(old, 20, last) ~= string.sub(v, 20, last) or string.sub(old, 1, 3) ~= 'CK\1' then
    local _, _, old_meta = parse(old)
    if old_meta then unindex(fk, old_meta) end
  end
end
-- The expiry as a Lua number: redis.call writes it with 17 significant digits (exact; inf
-- too). The creation time only orders entries for stats: whole milliseconds do, and '%d'
-- costs a fraction of the floating-point formatting.
redis.call('ZADD', P .. 'x', expires, fk)
redis.call('ZADD', P .. 'c', string.format('%d', created), fk)

-- An index lives at least as long as its longest-lived member. When a write extends it, it
-- gets 1/16 of the TTL on top, so that the writes that follow (a millisecond later or more)
-- need not extend it again. A new index is registered for cleanup; an existing one is
-- registered already (the registry forgets only missing indexes).
local function index(kind, name)
  local key = P .. kind .. ':' .. name
  local left = redis.call('PTTL', key)
  redis.call('SADD', key, fk)
  if left == -2 then
    if ttl then redis.call('PEXPIRE', key, ARGV[3]) end
    redis.call('SADD', P .. 'idx', kind .. ':' .. name)
  elseif left >= 0 then
    if not ttl then
      redis.call('PERSIST', key)
    elseif ttl > left then
      redis.call('PEXPIRE', key, string.format('%d', ttl + math.floor(ttl / 16)))
    end
  end
end
if ns ~= '' then index('n', ns) end
for i = 6, #ARGV do index('t', ARGV[i]) end
return 1
"""
)

# KEYS: entry. ARGV: P, fk, now ms, sequence ('' = INCR seq key), seq key, log item.
# Logs the delete and removes the entry; 1 if it was live.
DELETE = (
    _PRELUDE
    + r"""
record(sequence(ARGV[4], ARGV[5]), ARGV[6])
return purge({ARGV[2]}, tonumber(ARGV[3]), '', '')
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

# KEYS: log meta. ARGV: P, now ms, sequence, seq key, log item ('' = do not log: a second
# call for the same invalidation), kind ('n'/'t'), budget, names... Logs the invalidation;
# removes small indexes' entries at once and renames big indexes to drain keys, so that entries
# written from now on go to a fresh index. A big index whose drain key is still being emptied
# (by an earlier invalidation) is left for a second call once that drain is empty: merging two
# big sets would hold Redis for as long as both take to copy.
# Returns {removed, {names whose drain key to empty}, {names to call again for after that}}.
START_INVALIDATION = (
    _PRELUDE
    + r"""
local now, kind, budget = tonumber(ARGV[2]), ARGV[6], tonumber(ARGV[7])
if ARGV[5] ~= '' then record(sequence(ARGV[3], ARGV[4]), ARGV[5]) end
local removed, drains, again = 0, {}, {}
for i = 8, #ARGV do
  local name = ARGV[i]
  local key, drain = P .. kind .. ':' .. name, P .. string.upper(kind) .. ':' .. name
  local size = redis.call('SCARD', key)
  local draining = redis.call('EXISTS', drain) == 1
  if size > 0 and size <= budget then
    budget = budget - size
    removed = removed + purge(redis.call('SMEMBERS', key), now, kind, name)
    redis.call('DEL', key)
  elseif size > 0 and not draining then
    redis.call('RENAME', key, drain)
    draining = true
  elseif size > 0 then
    table.insert(again, name)
  end
  if draining then table.insert(drains, name) end
end
return {removed, drains, again}
"""
)

# KEYS: drain key. ARGV: P, now ms, kind, name, count. Removes up to `count` members' entries.
# Returns {removed, members left}.
DRAIN = (
    _PRELUDE
    + r"""
local popped = redis.call('SPOP', KEYS[1], tonumber(ARGV[5]))
local removed = purge(popped, tonumber(ARGV[2]), ARGV[3], ARGV[4])
return {removed, redis.call('SCARD', KEYS[1])}
"""
)

# KEYS: log meta. ARGV: P, now ms, 'start'/'more', sequence, seq key, log item ('' = do not
# log), count. 'start' logs the clear and moves the expiry index to a drain key (a small one
# is emptied at once when a drain key is left from another clear; a big one then waits: the
# reply asks for 'start' again once the drain is empty); each call removes up to `count`
# entries of the drain. Returns {removed, members left, 1 to call 'start' again after}.
CLEAR = (
    _PRELUDE
    + r"""
local now, count = tonumber(ARGV[2]), tonumber(ARGV[7])
local x, drain = P .. 'x', P .. 'X'
local removed, again = 0, 0
if ARGV[3] == 'start' then
  if ARGV[6] ~= '' then record(sequence(ARGV[4], ARGV[5]), ARGV[6]) end
  local size = redis.call('ZCARD', x)
  if size > 0 and redis.call('EXISTS', drain) == 0 then
    redis.call('RENAME', x, drain)
  elseif size > 0 and size <= count then
    removed = purge(redis.call('ZRANGE', x, 0, -1), now, '', '')
    count = count - size
  elseif size > 0 then
    again = 1
  end
end
if count > 0 then
  local popped, fks = redis.call('ZPOPMIN', drain, count), {}
  for i = 1, #popped, 2 do fks[#fks + 1] = popped[i] end
  removed = removed + purge(fks, now, '', '')
end
return {removed, redis.call('ZCARD', drain), again}
"""
)

# KEYS: expiry index. ARGV: P, now ms, kind ('n' or ''), name, full keys...
# Removes the given entries (those of namespace `name` when kind is 'n'); the live count.
PURGE = (
    _PRELUDE
    + r"""
local fks = {}
for i = 5, #ARGV do fks[#fks + 1] = ARGV[i] end
return purge(fks, tonumber(ARGV[2]), ARGV[3], ARGV[4])
"""
)

# KEYS: expiry index. ARGV: P, now ms, count. Removes up to `count` entries expired at `now`
# (and index entries of values Redis already expired). Returns {removed, examined}.
CLEANUP_EXPIRED = (
    _PRELUDE
    + r"""
local now, count = tonumber(ARGV[2]), tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', score(now), 'LIMIT', 0, count)
local r, removed = removals(), 0
for i, v in ipairs(values(due)) do
  local fk = due[i]
  local _, expires, meta = parse(v)
  if v and meta and expires > now then
    redis.call('ZADD', KEYS[1], score(expires), fk)
  else
    remove(r, fk, meta)
    removed = removed + 1
  end
end
apply(r)
return {removed, #due}
"""
)

# Removes the index members whose entry is gone or no longer carries the label.
_PRUNE_MEMBERS = r"""
local function prune(kind, name, members)
  local dead = {}
  for i, v in ipairs(values(members)) do
    local _, _, meta = parse(v)
    if not (meta and has(meta, kind, name)) then dead[#dead + 1] = members[i] end
  end
  each_slice('SREM', P .. kind .. ':' .. name, dead)
  return #dead
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
local r = removals()
for i = 1, #step[2], 2 do
  local fk = step[2][i]
  if redis.call('EXISTS', P .. 'e:' .. fk) == 0 then r.listed[#r.listed + 1] = fk end
end
apply(r)
return {step[1], #r.listed}
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
