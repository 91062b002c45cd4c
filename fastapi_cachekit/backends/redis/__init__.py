"""The Redis backend: a cache shared by every process, on one node or a Redis Cluster.

Modules: `backend` (the port's methods), `channel` (pub/sub under the key prefix),
`connection` (the redis-py client; its errors are translated here), `faults` (circuit breaker,
queued invalidations), `layout` (key names and slots), `writes` (a SET's further steps),
`invalidations` (when each invalidation runs, what it announces) and `ops` (the procedures it
runs), `sweep` (`cleanup_expired`), `stats`, `labels` (`label_counts`), `locks` (fill claims,
the sweep's lock) and the Lua that keeps indexes exact: `scripts` (writes),
`batch_scripts` (a batch's writes), `invalidation_scripts` (the invalidation log) and
`sweep_scripts` (removal in chunks, pruning, stats); `match` (SCAN MATCH patterns) and
`replay` (invalidations owed while Redis was unreachable); `batch` (get_many, set_many),
which sends many calls at once through `pipeline` (as `ops.delete_many` does).

Design (the key layout is in `layout`, the scripts in `scripts`):

- Every key lives under "{key_prefix}:", so `clear`, patterns and stats never see other keys.
  Values are stored in an envelope: created_at and expires_at (ms) plus the entry's namespace
  and tags, then the value. `get`/`exists` treat an entry whose expires_at <= clock() as
  missing, so TTLs follow the injected clock exactly like the memory backend; Redis' own PX
  expiry is the backstop that frees memory. A value that is not an envelope is a miss (and an
  error in stats).
- A `get` is one GET; a `set` one EVALSHA (SCRIPT LOAD and EVALSHA again only when Redis
  answers NOSCRIPT; a write with more than `writes.SET_LABELS` labels has the rest indexed
  first).
  Index updates happen in the same script as the write, and every script declares every key
  it touches (see `scripts`), so a slot moving between cluster nodes makes Redis answer ASK
  or TRYAGAIN before a script starts: a write is stored and indexed, or not at all.
- Batches: `get_many` is one MGET per shard; `set_many` one SET_MANY script call per shard
  (per 100 entries), which writes each entry as `set` would and does the work the entries
  share (entry lists, indexes) once; `delete_many` pipelines the script calls of `delete`,
  one per key. One round trip per node, and each key written exactly as alone (atomic per
  key, not per batch).
- Invalidations rename the index (or, for `clear`, the entry list) to a drain key, so new
  writes go to a fresh one, and empty the drain `CHUNK` entries per script call, reading at
  most `LABEL_BUDGET` labels per call: removing an entry touches its value, the entry lists
  and that index, never its other indexes, which keep a dead member. Each removal reads the
  entry first, so a stale member never removes an entry that has since moved elsewhere, and
  leaves alone a key no longer in the drain (another call removed it; it may have been
  written again since). The call that renames hands over the drain's first chunk, and the
  removal that empties the drain says so: on one node, an index of up to `CHUNK` entries is
  invalidated in two round trips.
  Patterns ZSCAN the entry list with MATCH and are filtered here with `GlobPattern.matches`,
  so results agree exactly with the memory backend.
- Cluster mode (`cluster=True` or a `redis+cluster://` / `rediss+cluster://` URL): keys are
  spread over a fixed set of shards, each one Redis hash tag; an entry and its shard's indexes
  share a slot, so one script still updates both atomically and a `get` is still one GET.
  Namespace, tag and pattern invalidations and `clear` fan out to every shard (concurrently),
  so they remove every matching entry written before the call began, wherever it lives.
- Fill tokens: every invalidation takes a number of the sequence "{prefix}:seq", which follows
  the server's clock (so a sequence Redis lost restarts above every token handed out), and
  records it against each label it invalidated in each shard it touches (see `scripts`); a
  `set(fill=token)` refuses to store if one of its labels (key, namespace, tags; patterns by
  their literal prefix; clear: always) was invalidated after the token, or if the shard's log
  no longer reaches back to it (lost, or more than `LOG_CAP` labels since). On one node the
  sequence is taken inside the invalidation's script, so the check is exact. On a cluster the
  number is taken first and then logged on the shards: exact for an invalidation that reached
  the shard before the write, and an invalidation that reaches it later removes the entry
  anyway.
- Memory without a sweeper: each write drops a few dead members of its shard's entry lists,
  registry and the indexes it writes to, and those expire with their longest-lived member.
  `cleanup_expired` prunes the rest (dead index members, entries Redis evicted, clears and
  invalidations a killed process left half done), in one process at a time (a SET NX PX lock).
- Stats: `entries` is exact for the clock (a ZCOUNT of live expiries; entries evicted by Redis
  count until the next cleanup); `memory_bytes` is what the kit holds: MEMORY USAGE of the
  shard's own keys, plus the live entries and the indexes (exact up to 16 of each, else a
  random sample of 16 times the count); oldest/newest look at most 32 entries in from either
  end of the creation index (approximate past that; creation times to the millisecond). Two
  round trips per shard, whatever the number of entries. `errors` counts values that did not
  decode (the service counts the failed calls it sees).
- Announcements: `set` and the invalidations (`delete_many` too) take an optional
  `Announcement` (see `channel`) for a tier in front (the hybrid backend's L1s); `set_many`
  a function making one for each script call's keys. The script that completes the change
  PUBLISHes it in the same atomic step (SET, each SET_MANY that stored anything, DELETE, a
  batch's last DELETE on one node, START_INVALIDATION when nothing is left to drain, the
  REMOVE that empties the last drain, or DRAIN_STEP when it finds that drain empty), so it
  costs no round trip and is never heard before the change; an invalidation no single script
  completes (a pattern, a clear, labels over several calls or shards, a batch on a cluster)
  publishes it right after.
- Needs Redis >= 6.2 (ZRANDMEMBER, SPOP with a count, GETRANGE, Lua with cjson and struct).
- Faults: redis-py errors become BackendUnavailable/BackendError at this boundary. A circuit
  breaker fails calls fast after Redis is found unreachable and probes again after a back-off
  (doubling up to `breaker_max_backoff`). An invalidation that fails, for whatever reason, is
  queued and replayed, in order, before the next call is served once Redis answers (see
  `faults`), and by a background task as soon as Redis answers again, so that an idle process
  does not hold it back; the callback given to `on_replay` is told about each one after it has been
  replayed (the hybrid backend announces it to the other processes then).
"""

from __future__ import annotations

from .backend import RedisBackend, RedisEntry
from .channel import Announcement, Channel, Heard, Subscription
from .faults import CircuitBreaker, Invalidation

__all__ = [
    "Announcement",
    "Channel",
    "CircuitBreaker",
    "Heard",
    "Invalidation",
    "RedisBackend",
    "RedisEntry",
    "Subscription",
]
