"""The Lua scripts that take invalidation numbers and log invalidations (see `scripts`).

Those that may be an invalidation's last step take a channel and a message ('' = none) and
PUBLISH it once the invalidation is complete: a hybrid tier's announcement, sent in the step
that finishes the change rather than in a round trip of its own.
"""

from __future__ import annotations

from .scripts import HELPERS

__all__ = [
    "DELETE",
    "DRAIN_STEP",
    "FILL_TOKEN",
    "LOG",
    "OPEN_LOG",
    "SEQUENCE",
    "START_CLEAR",
    "START_INVALIDATION",
]

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
    HELPERS
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

# KEYS: seq. The next number of the invalidation sequence (a cluster takes it first, then
# logs it on every shard).
SEQUENCE = (
    HELPERS
    + _LOG
    + r"""
return int(next_sequence(KEYS[1]))
"""
)

# KEYS: entry, expiry index, created index, log meta, log, [seq (one node)]. ARGV: full key,
# now ms, sequence ('' = the next one of seq), channel, message. Logs the delete, removes the
# entry and publishes the message; 1 if the entry was live.
DELETE = (
    HELPERS
    + _LOG
    + r"""
record(KEYS[4], KEYS[5], sequence(ARGV[3]), {'k:' .. ARGV[1]})
local v = redis.call('GET', KEYS[1])
redis.call('UNLINK', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
local _, expires = parse(v)
if expires and expires > tonumber(ARGV[2]) then return 1 end
return 0
"""
)

# KEYS: log meta, log (the label log, or the pattern log), [seq (one node)]. ARGV: sequence
# ('' = the next one of seq), items.
LOG = (
    HELPERS
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
# channel, message, count, labels. Renames each index to its drain key, so that entries
# written from now on go to a fresh index while the caller empties the drain. An index whose
# drain is still being emptied (by an earlier invalidation) is left for a second call once
# that drain is empty: merging two big sets would hold Redis for as long as both take to copy.
# When no label has anything left to do, the invalidation is complete: the message is
# published. Returns per label {step, members}: step 0 nothing to do, 1 empty the drain, 2
# empty the drain and call again; members: up to `count` of the drain's, the caller's first
# chunk (so that a small index is read in this same round trip).
START_INVALIDATION = (
    HELPERS
    + _LOG
    + r"""
local labels = {}
for i = 6, #ARGV do labels[#labels + 1] = ARGV[i] end
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
local busy = false
for i = 1, #labels do busy = busy or todo[i] ~= 0 end
if ARGV[3] ~= '' and not busy then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
local found = {}
for i = 1, #labels do
  local members = {}
  if todo[i] ~= 0 then members = redis.call('SRANDMEMBER', KEYS[2 + 2 * i], ARGV[5]) end
  found[i] = {todo[i], members}
end
return found
"""
)

# KEYS: a drain. ARGV: count, channel, message. Up to `count` of its members; none when it is
# empty, and then the invalidation it belongs to is complete: the message is published.
DRAIN_STEP = r"""
local members = redis.call('SRANDMEMBER', KEYS[1], ARGV[1])
if #members == 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return members
"""

# KEYS: log meta, log, expiry index, its drain, [seq (one node)]. ARGV: sequence ('' = the
# next one of seq), '1' to log. Moves the expiry index to its drain (see START_INVALIDATION).
# Returns 0 nothing to do, 1 empty the drain, 2 empty the drain and call again.
START_CLEAR = (
    HELPERS
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
