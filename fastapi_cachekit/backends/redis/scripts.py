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
"""

from __future__ import annotations

__all__ = [
    "DELETE",
    "FILL_TOKEN",
    "INDEX",
    "LOG",
    "LOG_CAP",
    "OPEN_LOG",
    "PRUNE_INDEX",
    "PRUNE_MISSING",
    "RELEASE_LOCK",
    "REMOVE",
    "SEQUENCE",
    "SET",
    "START_CLEAR",
    "START_INVALIDATION",
    "STATS",
    "TRIM",
    "UNINDEX",
]

LOG_CAP = 1024
"""Labels each shard's invalidation log keeps: a fill that outlasts this many distinct labels
invalidated on its shard is refused (it can no longer be shown safe)."""
TRIM = 4
"""Dead members of the entry lists and the registry that each write removes."""

# Shared helpers. Envelope: "CK\1", created ms (double), expires ms (double, inf = never),
# meta length (uint32), meta (JSON array [namespace or "", tag...]), value.
_COMMON = r"""
local LOG_CAP = {log_cap}
local TRIM = {trim}

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
""".replace("{log_cap}", str(LOG_CAP)).replace("{trim}", str(TRIM))

# Logging an invalidation. The sequence is the server's time in microseconds, or one more
# than the last number when invalidations come faster: a sequence Redis lost (restart without
# persistence, failover to a lagging replica, eviction) starts again above every token handed
# out before, so a fill older than the loss is refused. The log is a sorted set per shard,
# label -> the last invalidation of it ('k:{full key}', 'n:{ns}', 't:{tag}', '*' for a
# clear; patterns in their own set); past LOG_CAP labels the oldest go and the log's meta
# records from which number on it is complete ('since').
_LOG = r"""
local function next_sequence(seq_key)
  local g = math.max(tonumber(redis.call('GET', seq_key) or '0') + 1, now_us() + 1)
  redis.call('SET', seq_key, int(g))
  return g
end

-- The invalidation's number: given by the caller (cluster), or the next one of the sequence
-- (the last key) in this same atomic step (one node).
local function sequence(given)
  if given ~= '' then return tonumber(given) end
  return next_sequence(KEYS[#KEYS])
end

local function record(logm, log, g, items)
  if redis.call('HSETNX', logm, 'since', int(g)) == 0 then
    local last = tonumber(redis.call('HGET', logm, 'last') or '0')
    if g > last then redis.call('HSET', logm, 'last', int(g)) end
  else
    redis.call('HSET', logm, 'last', int(g))  -- a new log: complete from this one on
  end
  for first = 1, #items, 500 do
    local args = {}
    for i = first, math.min(first + 499, #items) do
      args[#args + 1] = int(g)
      args[#args + 1] = items[i]
    end
    redis.call('ZADD', log, 'GT', unpack(args))
  end
  local over = redis.call('ZCARD', log) - LOG_CAP
  if over > 0 then
    local popped = redis.call('ZPOPMIN', log, over)
    local floor = tonumber(popped[#popped])
    if floor > tonumber(redis.call('HGET', logm, 'since')) then
      redis.call('HSET', logm, 'since', int(floor))
    end
  end
end
"""

# KEYS: seq, [log meta (one node)]. Returns {token, 1 if the sequence was missing}. A missing
# sequence is set to the token; a missing log meta is opened at it, so that only fills older
# than the loss of the log are refused.
FILL_TOKEN = (
    _COMMON
    + r"""
local seq = redis.call('GET', KEYS[1])
local token = math.max(tonumber(seq or '0'), now_us())
if not seq then redis.call('SET', KEYS[1], int(token)) end
if KEYS[2] then redis.call('HSETNX', KEYS[2], 'since', int(token)) end
return {int(token), seq and 0 or 1}
"""
)

# KEYS: log meta. ARGV: since. Opens a shard's log if it is missing.
OPEN_LOG = r"""
return redis.call('HSETNX', KEYS[1], 'since', ARGV[1])
"""

# Whether the fill of entry fk (namespace ns, labels) with `token` may be stored. A missing
# log meta means the log was lost after the token was taken: refused, and opened again.
_FILL_OK = r"""
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
_INDEXING = r"""
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

-- Adds fk to the index KEYS[offset + i] of each labels[i], i in first..last, and registers
-- them. With `x` (the expiry index), drops the dead members it samples from up to 16 of them.
local function index_all(offset, labels, first, last, fk, expires, px, registry, x, now)
  local ttl, count = tonumber(px), last - first + 1
  local left, start, scores = redis.call('PTTL', registry), math.floor(now) % math.max(count, 1), {}
  for i = first, last do
    local key = KEYS[offset + i]
    local index_left = redis.call('PTTL', key)
    if x and (i - first - start) % count < 16 then
      local sampled = dead(x, redis.call('SRANDMEMBER', key, TRIM), now)
      if #sampled > 0 then redis.call('SREM', key, unpack(sampled)) end
    end
    redis.call('SADD', key, fk)
    outlive(key, index_left, ttl, px)
    scores[#scores + 1] = expires
    scores[#scores + 1] = labels[i]
  end
  if count > 0 then
    redis.call('ZADD', registry, 'GT', unpack(scores))
    outlive(registry, left, ttl, px)
  end
end
"""

# KEYS: log meta, registry, then the index of each label. ARGV: full key, expiry score, ttl ms
# ('' = none), labels. Adds the entry to the indexes of the labels of a write that has more of
# them than one SET call indexes (a SET follows). Returns a number every later invalidation
# of the shard exceeds (its last one, or its log's start if later): the SET refuses when a
# label was logged past it, or when the log lost entries past it.
INDEX = (
    _COMMON
    + _INDEXING
    + r"""
local labels = {}
for i = 4, #ARGV do labels[#labels + 1] = ARGV[i] end
-- A shard without a log opens one: the SET then knows that none was lost meanwhile.
redis.call('HSETNX', KEYS[1], 'since', int(now_us()))
local meta = redis.call('HMGET', KEYS[1], 'since', 'last')
local last = int(math.max(tonumber(meta[1]), tonumber(meta[2] or '0')))
index_all(2, labels, 1, #labels, ARGV[1], ARGV[2], ARGV[3], KEYS[2], nil, 0)
return last
"""
)

# KEYS: entry, expiry index, created index, registry, log meta, log, pattern log, then the
# index of each of the first `declared` labels. ARGV: envelope, ttl ms ('' = none), fill token
# ('' = none), full key, indexed at ('' = none), declared, labels ('n:{ns}' first if any, then
# 't:{tag}'...). Stores the entry and indexes it; the labels past `declared` were indexed by
# INDEX calls, which returned `indexed at`. Returns 0 if the fill is stale, -1 if one of those
# labels was invalidated since (the caller starts again), 1, or the labels of the old value
# that the new one dropped (the caller takes the entry out of those indexes).
SET = (
    _COMMON
    + _FILL_OK
    + _INDEXING
    + r"""
local v, px, token, fk, indexed_at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local declared = tonumber(ARGV[6])
local x, c, registry, logm, log = KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local created, expires, size = struct.unpack('>ddI4', v, 4)
local labels, ns = {}, ''
for i = 7, #ARGV do labels[#labels + 1] = ARGV[i] end
if labels[1] and string.sub(labels[1], 1, 2) == 'n:' then ns = string.sub(labels[1], 3) end
if token ~= '' and not fill_ok(logm, log, KEYS[7], tonumber(token), fk, ns, labels) then
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
-- The old labels the new value dropped (none when the meta is the same, byte for byte).
local dropped = {}
if old and string.sub(old, 20, 23 + size) ~= string.sub(v, 20, 23 + size) then
  local _, _, old_meta = parse(old)
  if old_meta then
    local kept = {}
    for _, label in ipairs(labels) do kept[label] = true end
    if old_meta[1] ~= '' and not kept['n:' .. old_meta[1]] then
      dropped[#dropped + 1] = 'n:' .. old_meta[1]
    end
    for i = 2, #old_meta do
      if not kept['t:' .. old_meta[i]] then dropped[#dropped + 1] = 't:' .. old_meta[i] end
    end
  end
end

-- Each write drops up to TRIM members of the entry lists that expired (their values are
-- gone with Redis' own expiry), so that the lists hold the live entries plus a few; the same
-- for the registry, and for the dead members sampled from the indexes written to.
local ttl = tonumber(px)
for _, key in ipairs({x, registry}) do
  local expired = redis.call('ZRANGEBYSCORE', key, '-inf', score(created), 'LIMIT', 0, TRIM)
  if #expired > 0 then
    redis.call('ZREM', key, unpack(expired))
    if key == x then redis.call('ZREM', c, unpack(expired)) end
  end
end
local left = redis.call('PTTL', x)
redis.call('ZADD', x, expires, fk)
outlive(x, left, ttl, px)
left = redis.call('PTTL', c)
redis.call('ZADD', c, int(created), fk)
outlive(c, left, ttl, px)
index_all(7, labels, 1, declared, fk, score(expires), px, registry, x, created)
if #dropped > 0 then return dropped end
return 1
"""
)

# KEYS: entry, then the index of each label. ARGV: full key, labels. Takes the entry out of
# the indexes of the labels its value no longer carries.
UNINDEX = (
    _COMMON
    + r"""
local _, _, meta = parse(redis.call('GET', KEYS[1]))
for i = 2, #ARGV do
  if not (meta and has(meta, ARGV[i])) then redis.call('SREM', KEYS[i], ARGV[1]) end
end
return 1
"""
)

# KEYS: entry, expiry index, created index, log meta, log, [seq (one node)]. ARGV: full key,
# now ms, sequence ('' = the next one of seq). Logs the delete and removes the entry; 1 if it
# was live.
DELETE = (
    _COMMON
    + _LOG
    + r"""
record(KEYS[4], KEYS[5], sequence(ARGV[3]), {'k:' .. ARGV[1]})
local v = redis.call('GET', KEYS[1])
redis.call('UNLINK', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local _, expires = parse(v)
if expires and expires > tonumber(ARGV[2]) then return 1 end
return 0
"""
)

# KEYS: log meta, log (the label log, or the pattern log), [seq (one node)]. ARGV: sequence
# ('' = the next one of seq), items.
LOG = (
    _COMMON
    + _LOG
    + r"""
local items = {}
for i = 2, #ARGV do items[#items + 1] = ARGV[i] end
record(KEYS[1], KEYS[2], sequence(ARGV[1]), items)
return 1
"""
)

# KEYS: log meta, log, then (index, drain) of each label, [seq (one node)]. ARGV: sequence
# ('' = the next one of seq), '1' to log ('' for a second call for the same invalidation),
# labels. Renames each index to its drain key, so that entries written from now on go to a
# fresh index while the caller empties the drain. An index whose drain is still being
# emptied (by an earlier invalidation) is left for a second call once that drain is empty:
# merging two big sets would hold Redis for as long as both take to copy.
# Returns per label: 0 nothing to do, 1 empty the drain, 2 empty the drain and call again.
START_INVALIDATION = (
    _COMMON
    + _LOG
    + r"""
local labels = {}
for i = 3, #ARGV do labels[#labels + 1] = ARGV[i] end
if ARGV[2] ~= '' then record(KEYS[1], KEYS[2], sequence(ARGV[1]), labels) end
local todo = {}
for i = 1, #labels do
  local index, drain = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local draining = redis.call('EXISTS', drain) == 1
  if redis.call('EXISTS', index) == 0 then
    todo[i] = draining and 1 or 0
  elseif draining then
    todo[i] = 2
  else
    redis.call('RENAME', index, drain)
    todo[i] = 1
  end
end
return todo
"""
)

# KEYS: log meta, log, expiry index, its drain, [seq (one node)]. ARGV: sequence ('' = the
# next one of seq), '1' to log. Moves the expiry index to its drain (see START_INVALIDATION).
# Returns 0 nothing to do, 1 empty the drain, 2 empty the drain and call again.
START_CLEAR = (
    _COMMON
    + _LOG
    + r"""
if ARGV[2] ~= '' then record(KEYS[1], KEYS[2], sequence(ARGV[1]), {'*'}) end
local draining = redis.call('EXISTS', KEYS[4]) == 1
if redis.call('EXISTS', KEYS[3]) == 0 then return draining and 1 or 0 end
if draining then return 2 end
redis.call('RENAME', KEYS[3], KEYS[4])
return 1
"""
)

# KEYS: expiry index, created index, source (a drain set or zset, the expiry index, or any
# key when there is none), then the entries. ARGV: now ms, source kind ('s' set, 'z' zset,
# '' none), what to remove ('' any entry, 'n:{ns}' / 't:{tag}' entries carrying the label,
# 'expired' entries past their expiry), budget, full keys. Removes the entries (value and
# places in the entry lists) and takes the full keys out of the source, stopping once their
# metadata held `budget` labels (at least one entry each call: the work is bounded by the
# index memberships read). Returns {live entries removed, entries removed, full keys done}.
REMOVE = (
    _COMMON
    + r"""
local now, source, what, budget = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local removed, taken, done, listed, unlink = 0, 0, {}, {}, {}
for i = 5, #ARGV do
  if budget <= 0 then break end
  local fk, v = ARGV[i], redis.call('GET', KEYS[i - 1])
  local _, expires, meta = parse(v)
  local take
  if what == '' then
    take = true
  elseif what == 'expired' then
    take = not (expires and expires > now)
    if not take then redis.call('ZADD', KEYS[1], score(expires), fk) end  -- listed wrongly
  else
    take = meta and has(meta, what)
  end
  if meta then budget = budget - #meta else budget = budget - 1 end
  if take then
    if v then unlink[#unlink + 1] = KEYS[i - 1] end
    listed[#listed + 1] = fk
    taken = taken + 1
    if expires and expires > now then removed = removed + 1 end
  elseif not v then
    listed[#listed + 1] = fk  -- gone already (Redis expired or evicted it)
  end
  done[#done + 1] = fk
end
if #unlink > 0 then redis.call('UNLINK', unpack(unlink)) end
if #listed > 0 then
  redis.call('ZREM', KEYS[1], unpack(listed))
  redis.call('ZREM', KEYS[2], unpack(listed))
end
if source == 's' and #done > 0 then redis.call('SREM', KEYS[3], unpack(done)) end
if source == 'z' and #done > 0 then redis.call('ZREM', KEYS[3], unpack(done)) end
return {removed, taken, #done}
"""
)

# KEYS: index, its drain, expiry index, registry. ARGV: now ms, label, cursor, count. One
# SSCAN step removing the index members that are no longer live entries; an index that is
# gone (and not being drained) leaves the registry. Returns {cursor, pruned, 1 if a drain
# was left over by an interrupted invalidation}.
PRUNE_INDEX = (
    _COMMON
    + r"""
local draining = redis.call('EXISTS', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then
  if draining == 0 then redis.call('ZREM', KEYS[4], ARGV[2]) end
  return {'0', 0, draining}
end
local step = redis.call('SSCAN', KEYS[1], ARGV[3], 'COUNT', ARGV[4])
local found = dead(KEYS[3], step[2], tonumber(ARGV[1]))
if #found > 0 then redis.call('SREM', KEYS[1], unpack(found)) end
return {step[1], #found, draining}
"""
)

# KEYS: expiry index, created index, then entries. ARGV: full keys. Removes from the entry
# lists the entries whose value is gone (evicted by Redis' maxmemory policy).
PRUNE_MISSING = r"""
local gone = {}
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[i + 2]) == 0 then gone[#gone + 1] = ARGV[i] end
end
if #gone > 0 then
  redis.call('ZREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
return #gone
"""

# KEYS: expiry index, created index, registry, log meta, log, pattern log, expiry drain, then
# sampled entries, then sampled indexes. ARGV: now ms, walk limit, number of sampled entries,
# their full keys.
# Returns {live entries, bytes held, oldest created ms, newest created ms} (strings; '' when
# there are none). Bytes: the shard's own structures, plus the mean of the sampled entries
# times the live count and the mean of the sampled indexes times the registry's size (exact
# when the samples are everything).
STATS = (
    _COMMON
    + r"""
local now, walk, sampled = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local x, c = KEYS[1], KEYS[2]
local live = redis.call('ZCOUNT', x, '(' .. score(now), '+inf')

local function usage(key)
  return tonumber(redis.call('MEMORY', 'USAGE', key) or 0) or 0
end
-- The mean size of KEYS[first..last], of the live entries among them when `live_only`.
local function mean_usage(first, last, live_only)
  local total, seen = 0, 0
  for i = first, last do
    local s = live_only and redis.call('ZSCORE', x, ARGV[i - 4])
    if not live_only or (s and (s == 'inf' or tonumber(s) > now)) then
      local size = usage(KEYS[i])
      if size > 0 then total, seen = total + size, seen + 1 end
    end
  end
  if seen == 0 then return 0 end
  return total / seen
end
local memory = 0
for i = 1, 7 do memory = memory + usage(KEYS[i]) end
memory = memory + mean_usage(8, 7 + sampled, true) * live
memory = memory + mean_usage(8 + sampled, #KEYS, false) * redis.call('ZCARD', KEYS[3])
if live == 0 then return {0, int(memory), '', ''} end

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
return {live, int(memory), first_live('ZRANGE'), first_live('ZREVRANGE')}
"""
)

# KEYS: lock. ARGV: owner token. Deletes the lock only if this owner still holds it.
RELEASE_LOCK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: seq. The next number of the invalidation sequence (a cluster takes it first, then
# logs it on every shard).
SEQUENCE = (
    _COMMON
    + _LOG
    + r"""
return int(next_sequence(KEYS[1]))
"""
)
