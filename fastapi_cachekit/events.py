"""Cache events: what happened, told to an observer (metrics, traces, logs, the dashboard).

Every layer decides its outcomes in one place and, when the service has an observer, hands
it one `CacheEvent` per outcome, synchronously, in the caller's task (so a tracer sees the
request's span as the current one). Without an observer nothing is built: the hot paths cost
what they cost before.

An observer must be quick and must not raise; what it raises is caught, counted as a fault
and logged, never passed to the caller.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

__all__ = ["CacheEvent", "CacheObserver", "EventKind", "Layer", "key_hash"]

EventKind = Literal[
    "hit",  # a stored value was served
    "miss",  # nothing (usable) was stored
    "stale_served",  # a stale response was served (HTTP: stale-while-revalidate, stale-if-error)
    "revalidated",  # a stored response was confirmed by the origin (HTTP 304)
    "stored",  # a value was written
    "not_stored",  # a value was not written; `reason` says why
    "coalesced",  # a caller joined a fill in progress (single flight) instead of computing
    "lock_wait",  # a caller waited for another process's fill; `duration` says how long
    "invalidation",  # entries were removed; `reason` is its kind, `count` the number removed
    "bypass",  # the cache was skipped: turned off (service), or a request it leaves alone
    # (route, reason "request": credentials, a method other than GET/HEAD)
    "fault",  # a backend fault answered as a miss or a skipped write; `reason` its class
    "breaker_open",  # the Redis circuit breaker opened: calls fail fast
    "breaker_closed",  # Redis answers again
    "replay",  # queued invalidations were replayed; `count` how many
]

Layer = Literal["memory", "l1", "l2", "redis", "http", "route", "service"]


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """One outcome. Fields that do not apply to an event's kind are None (or their default).

    `namespace` is the entry's namespace; on HTTP events (layers "http" and "route") it is the
    route's path template (`/items/{item_id}`), never the raw path, so that a label built from
    it stays bounded. `key` is the storage key: observers that export events (metrics, logs)
    use `key_hash(key)` or nothing, never the key itself.
    """

    kind: EventKind
    layer: Layer
    namespace: str | None = None
    reason: str | None = None
    count: int = 1
    duration: float | None = None
    key: str | None = None
    queued: bool = False


@runtime_checkable
class CacheObserver(Protocol):
    """What the service tells about its outcomes; see the module docstring for the rules.

    An observer may also have a `kinds` attribute, the (frozen)set of kinds it wants.
    It still gets the other kinds and drops them; but when no observer wants "hit" or
    "miss", reads are not told at all, and the read path costs what it costs unobserved.
    """

    def event(self, event: CacheEvent) -> None:
        """Take one event (quickly, without raising)."""


def key_hash(key: str) -> str:
    """A short, stable stand-in for a key in logs and traces (the key may hold user data)."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
