"""The Redis backend: one node or a Redis Cluster, behind the `CacheBackend` port.

Modules: `backend` (the port's methods), `channel` (pub/sub under the key prefix),
`connection` (the redis-py client; its errors are translated here), `faults` (circuit breaker,
queued invalidations), `layout` (key names and slots), `ops` (the calls each method makes) and
the Lua that keeps indexes exact: `scripts` (writes), `invalidation_scripts` (the invalidation
log) and `sweep_scripts` (removal in chunks, pruning, stats).
"""

from __future__ import annotations

from .backend import RedisBackend, RedisEntry
from .channel import Channel, Heard, Subscription
from .faults import Invalidation

__all__ = ["Channel", "Heard", "Invalidation", "RedisBackend", "RedisEntry", "Subscription"]
