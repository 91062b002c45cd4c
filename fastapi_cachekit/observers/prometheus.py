"""Cache events as Prometheus metrics (the `prometheus` extra: prometheus-client).

`PrometheusObserver` turns each `CacheEvent` into counter increments and histogram
observations; the gauges (entries, bytes, pending invalidations, breaker) are set from
`CacheStats` when a scrape asks (`record_stats`). Label values that come from the application
(namespaces, route templates, reasons) are bounded by `labels.BoundedLabel`, so the number of
series stays finite whatever the traffic.

Under several workers, prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR set
before the process starts) keeps each worker's values in a file; `render` then sums them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from ..events import CacheEvent
from ..models import CacheStats
from .labels import BoundedLabel

try:
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        REGISTRY,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )
    from prometheus_client.multiprocess import MultiProcessCollector
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "fastapi_cachekit.observers.prometheus needs prometheus-client: "
        "pip install 'fastapi-cache-kit[prometheus]'"
    ) from exc

__all__ = ["PrometheusObserver", "default_observer"]

HTTP_LAYERS = frozenset({"http", "route"})
# The kinds of a service read, and those of an HTTP request's decision (one per request).
READS = frozenset({"hit", "miss", "stale_served", "revalidated"})
HTTP_DECISIONS = READS | {"coalesced", "stored", "not_stored"}
# Invalidations take from a millisecond (a key) to seconds (a pattern over a large Redis).
INVALIDATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
LOCK_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Memoised event shapes: beyond this (a flood of distinct namespaces), plans are rebuilt.
MAX_PLANS = 10_000

Action = Callable[[CacheEvent], None]


class PrometheusObserver:
    """Counts cache events as Prometheus metrics in `registry` (None: the default registry).

    At most `namespace_limit` namespaces, `route_limit` route templates and `reason_limit`
    reasons get a label value of their own; later ones are counted under `__other__`.
    One observer per registry: share it between caches rather than making a second.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace_limit: int = 100,
        route_limit: int = 100,
        reason_limit: int = 50,
    ) -> None:
        self.registry = REGISTRY if registry is None else registry
        self._namespace = BoundedLabel(namespace_limit, "namespace")
        self._route = BoundedLabel(route_limit, "route")
        self._reason = BoundedLabel(reason_limit, "reason")
        self._plans: dict[tuple[str, str, str | None, str | None, bool], tuple[Action, ...]] = {}
        try:
            self._register()
        except ValueError as exc:  # prometheus-client: "Duplicated timeseries in ..."
            raise ValueError(
                f"{exc}: this registry already has the cachekit metrics; share one "
                "PrometheusObserver between caches, or pass registry=CollectorRegistry()"
            ) from None

    # --- events --------------------------------------------------------------------------

    def event(self, event: CacheEvent) -> None:
        """Count one event. The plan of each distinct event shape (which children to add to)
        is worked out once and memoised, up to `MAX_PLANS` shapes."""
        signature = (event.kind, event.layer, event.namespace, event.reason, event.queued)
        plan = self._plans.get(signature)
        if plan is None:
            plan = self._plan(event)
            if len(self._plans) < MAX_PLANS:
                self._plans[signature] = plan
        for action in plan:
            action(event)

    def _plan(self, event: CacheEvent) -> tuple[Action, ...]:
        http = event.layer in HTTP_LAYERS
        where = (self._route if http else self._namespace)(event.namespace)
        reason = self._reason(event.reason)
        kind, layer = event.kind, event.layer
        if http and kind in HTTP_DECISIONS:
            return (_add(self.http_requests.labels(layer, where, kind, reason)),)
        if kind in READS:
            return (_add(self.lookups.labels(layer, where, kind)),)
        if kind in ("stored", "not_stored"):
            return (_add(self.writes.labels(layer, where, kind, reason)),)
        if kind == "coalesced":
            return (_add(self.coalesced.labels(layer, where)),)
        if kind == "lock_wait":
            return (_observe(self.lock_wait.labels(layer)),)
        if kind == "bypass":
            return (_add(self.bypasses.labels(layer)),)
        if kind == "fault":
            return (_add(self.faults.labels(layer, reason)),)
        if kind == "invalidation":
            queued = "true" if event.queued else "false"
            plan = (
                _one(self.invalidations.labels(reason, queued).inc),
                _add(self.invalidated_entries.labels(reason)),
                _observe(self.invalidation_seconds.labels(reason)),
            )
            return (*plan, _one(self.pending.inc)) if event.queued else plan
        if kind in ("breaker_open", "breaker_closed"):
            is_open = kind == "breaker_open"
            state = self.breaker_transitions.labels("open" if is_open else "closed")
            return (_one(state.inc), _one(lambda: self.breaker_open.set(1 if is_open else 0)))
        if kind == "replay":
            return (_add(self.replayed), lambda e: self.pending.dec(e.count))
        return ()

    # --- scrapes -------------------------------------------------------------------------

    def record_stats(self, stats: CacheStats, *, breaker_open: bool | None = None) -> None:
        """Set the gauges from `cache.get_stats()` (the metrics route does it at each scrape)."""
        self.entries.set(stats.total_entries)
        if stats.memory_usage_bytes is not None:
            self.memory_bytes.set(stats.memory_usage_bytes)
        self.pending.set(stats.pending_invalidations)
        if breaker_open is not None:
            self.breaker_open.set(1 if breaker_open else 0)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type: this registry's metrics, or in
        multiprocess mode (PROMETHEUS_MULTIPROC_DIR) every worker's, summed."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # --- the metrics ---------------------------------------------------------------------

    def _register(self) -> None:
        r = self.registry
        self.lookups = Counter(
            "cachekit_lookups",
            "Cache reads by layer, namespace and outcome (hit, miss, stale_served, revalidated).",
            ["layer", "namespace", "outcome"],
            registry=r,
        )
        self.writes = Counter(
            "cachekit_writes",
            "Cache writes by layer, namespace and outcome (stored, not_stored) with the reason.",
            ["layer", "namespace", "outcome", "reason"],
            registry=r,
        )
        self.http_requests = Counter(
            "cachekit_http_requests",
            "HTTP requests by the cache's decision (outcome: hit, stale_served, revalidated, "
            "coalesced, stored, not_stored, miss; reason: the Cache-Status detail), by layer "
            "(http: the middleware, route: @cached_route) and route template.",
            ["layer", "route", "outcome", "reason"],
            registry=r,
        )
        self.coalesced = Counter(
            "cachekit_coalesced",
            "Callers that joined a fill in progress instead of computing (single flight).",
            ["layer", "namespace"],
            registry=r,
        )
        self.lock_wait = Histogram(
            "cachekit_fill_lock_wait_seconds",
            "Time spent waiting for another process's fill of the same key.",
            ["layer"],
            buckets=LOCK_WAIT_BUCKETS,
            registry=r,
        )
        self.bypasses = Counter(
            "cachekit_bypasses",
            "Calls that skipped the cache: layer service, made while it was turned off; layer "
            "route, @cached_route requests it leaves alone (credentials, not GET/HEAD).",
            ["layer"],
            registry=r,
        )
        self.faults = Counter(
            "cachekit_faults",
            "Backend faults answered as a miss or a skipped write, by layer and error class.",
            ["layer", "reason"],
            registry=r,
        )
        self.invalidations = Counter(
            "cachekit_invalidations",
            "Invalidations by kind (key, namespace, tags, pattern, clear, expired); queued: "
            "it could not reach the backend and waits to be replayed.",
            ["kind", "queued"],
            registry=r,
        )
        self.invalidated_entries = Counter(
            "cachekit_invalidated_entries",
            "Entries removed by invalidations, by kind.",
            ["kind"],
            registry=r,
        )
        self.invalidation_seconds = Histogram(
            "cachekit_invalidation_duration_seconds",
            "How long invalidations took, by kind.",
            ["kind"],
            buckets=INVALIDATION_BUCKETS,
            registry=r,
        )
        self.breaker_transitions = Counter(
            "cachekit_circuit_breaker_transitions",
            "Times the Redis circuit breaker opened or closed.",
            ["state"],
            registry=r,
        )
        self.replayed = Counter(
            "cachekit_replayed_invalidations",
            "Queued invalidations replayed once Redis answered again.",
            registry=r,
        )
        # Gauges. Entries and bytes describe the shared cache on Redis (the same in every
        # worker: the most recent value is right); the others are each process's own.
        self.entries = Gauge(
            "cachekit_entries",
            "Live entries (Redis: the shared cache; memory: the scraped process's).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.memory_bytes = Gauge(
            "cachekit_memory_bytes",
            "Memory the entries take (the backend's estimate).",
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.pending = Gauge(
            "cachekit_pending_invalidations",
            "Invalidations waiting for an unreachable Redis (summed over live workers).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.breaker_open = Gauge(
            "cachekit_circuit_breaker_open",
            "1 while the Redis circuit breaker is open (multiprocess: live workers with it open).",
            registry=r,
            multiprocess_mode="livesum",
        )


@functools.cache
def default_observer() -> PrometheusObserver:
    """The process's observer on the default registry, made at the first call: every app
    built in the process (each test's, say) shares it instead of registering the metrics
    twice."""
    return PrometheusObserver()


def _add(counter: Counter) -> Action:
    """Add the event's count."""
    return lambda event: counter.inc(event.count)


def _one(increment: Callable[[], object]) -> Action:
    """Call once per event, whatever its count."""

    def once(event: CacheEvent) -> None:
        increment()

    return once


def _observe(histogram: Histogram) -> Action:
    """Observe the event's duration, when it has one."""

    def observe(event: CacheEvent) -> None:
        if event.duration is not None:
            histogram.observe(event.duration)

    return observe
