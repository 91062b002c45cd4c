"""The Lua scripts that work through a shard's entries: removal in chunks, pruning, stats
(see `scripts`)."""

from __future__ import annotations

from .scripts import HELPERS

__all__ = ["PRUNE_INDEX", "PRUNE_MISSING", "REMOVE", "STATS"]

# KEYS: expiry index, created index, source (a drain set or zset, the expiry index, or any
# key when there is none), then the entries. ARGV: now ms, source kind ('s' set, 'z' zset,
# '' none), what to remove ('' any entry, 'n:{ns}' / 't:{tag}' entries carrying the label,
# 'expired' entries past their expiry), budget, channel, message ('' = none), full keys.
# Removes the entries (value and places in the entry lists) and takes the full keys out of
# the source, stopping once their metadata held `budget` labels (at least one entry each
# call: the work is bounded by the index memberships read). A drain (a set source) found
# empty then is done with: its invalidation is complete, and the message is published.
# Returns {live entries removed, entries removed, full keys done, 1 if the drain is empty}.
REMOVE = (
    HELPERS
    + r"""
local now, source, what, budget = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4])
local removed, taken, done, listed, unlink = 0, 0, {}, {}, {}
-- A full key no longer in the drain was dealt with by another call (read from the drain
-- before this one took it out): its entry may be a newer write, listed in the new index.
local member = {}
if source == 's' and #ARGV >= 7 then
  member = redis.call('SMISMEMBER', KEYS[3], unpack(ARGV, 7))
end
for i = 7, #ARGV do
  if budget <= 0 then break end
  local fk = ARGV[i]
  if member[i - 6] == 0 then
    budget = budget - 1
  else
    local v = redis.call('GET', KEYS[i - 3])
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
      if v then unlink[#unlink + 1] = KEYS[i - 3] end
      listed[#listed + 1] = fk
      taken = taken + 1
      if expires and expires > now then removed = removed + 1 end
    elseif not v then
      listed[#listed + 1] = fk  -- gone already (Redis expired or evicted it)
    end
  end
  done[#done + 1] = fk
end
if #unlink > 0 then redis.call('UNLINK', unpack(unlink)) end
if #listed > 0 then
  redis.call('ZREM', KEYS[1], unpack(listed))
  redis.call('ZREM', KEYS[2], unpack(listed))
end
if source == 'z' and #done > 0 then redis.call('ZREM', KEYS[3], unpack(done)) end
local drained = 0
if source == 's' then
  if #done > 0 then redis.call('SREM', KEYS[3], unpack(done)) end
  if redis.call('EXISTS', KEYS[3]) == 0 then
    drained = 1
    if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
  end
end
return {removed, taken, #done, drained}
"""
)

# KEYS: index, its drain, expiry index, registry. ARGV: now ms, label, cursor, count. One
# SSCAN step removing the index members that are no longer live entries; an index that is
# gone (and not being drained) leaves the registry. Returns {cursor, pruned, 1 if a drain
# was left over by an interrupted invalidation}.
PRUNE_INDEX = (
    HELPERS
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
    HELPERS
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
