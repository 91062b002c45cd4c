"""Cache events as OpenTelemetry spans and metrics (the `otel` extra: opentelemetry-api).

Events are told synchronously in the caller's task, so the current span is the caller's (the
request's, under an instrumented server): each cache call or HTTP cache decision becomes a
child span of it, back-dated by the event's duration when it has one. Outcomes that are not
calls (a fault, the breaker opening or closing, a replay) are span events on the current span.

OpenTelemetry has no semantic conventions for caches yet; the attributes follow their style
under `cache.*` (the names Sentry's conventions use: `cache.hit`, `cache.operation`), and
HTTP decisions carry the standard `http.route`. Keys are never exported, only `key_hash`.
"""

from __future__ import annotations

import time

from ..events import CacheEvent, EventKind, key_hash
from .labels import BoundedLabel

try:
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace
    from opentelemetry.util.types import AttributeValue
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "fastapi_cachekit.observers.otel needs opentelemetry-api: "
        "pip install 'fastapi-cache-kit[otel]'"
    ) from exc

__all__ = ["OpenTelemetryObserver"]

SCOPE = "fastapi_cachekit"
HTTP_LAYERS = frozenset({"http", "route"})
# The operation (and span name) of each event kind that is a call; others are span events.
OPERATIONS: dict[EventKind, str] = {
    "hit": "get",
    "miss": "get",
    "stale_served": "get",
    "revalidated": "revalidate",
    "stored": "set",
    "not_stored": "set",
    "coalesced": "coalesce",
    "lock_wait": "lock_wait",
    "invalidation": "invalidate",
    "bypass": "bypass",
}
# Whether a stored entry answered, for the kinds that are reads.
HITS: dict[EventKind, bool] = {
    "hit": True,
    "stale_served": True,
    "revalidated": True,
    "miss": False,
}


class OpenTelemetryObserver:
    """Spans for cache calls and HTTP cache decisions, plus the `cachekit.*` metrics.

    `tracer_provider` and `meter_provider` default to the global ones. Namespace, route and
    reason attributes on metrics are bounded like the Prometheus labels (`__other__` past
    the limits); spans carry them as they are. A span per cache read is what tracing costs
    most (an SDK span takes tens of microseconds): `spans=False` keeps the metrics only,
    `metrics=False` the spans only.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: otel_metrics.MeterProvider | None = None,
        *,
        namespace_limit: int = 100,
        route_limit: int = 100,
        reason_limit: int = 50,
        spans: bool = True,
        metrics: bool = True,
    ) -> None:
        self._spans, self._metrics = spans, metrics
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = otel_metrics.get_meter(SCOPE, meter_provider=meter_provider)
        self._events = meter.create_counter(
            "cachekit.events", unit="{event}", description="Cache outcomes, by kind and layer."
        )
        self._removed = meter.create_counter(
            "cachekit.invalidated_entries",
            unit="{entry}",
            description="Entries removed by invalidations.",
        )
        self._duration = meter.create_histogram(
            "cachekit.operation.duration",
            unit="s",
            description="How long invalidations and fill-lock waits took.",
        )
        self._namespace = BoundedLabel(namespace_limit, "namespace")
        self._route = BoundedLabel(route_limit, "route")
        self._reason = BoundedLabel(reason_limit, "reason")

    def event(self, event: CacheEvent) -> None:
        """Record one event: a span (or a span event) and its metrics."""
        if self._spans:
            attributes = _attributes(event)
            operation = OPERATIONS.get(event.kind)
            if operation is None:
                trace.get_current_span().add_event(f"cachekit.{event.kind}", attributes)
            else:
                self._span(operation, event, attributes)
        if self._metrics:
            self._measure(event)

    def _span(
        self, operation: str, event: CacheEvent, attributes: dict[str, AttributeValue]
    ) -> None:
        end = time.time_ns()
        start = end if event.duration is None else end - int(event.duration * 1e9)
        span = self._tracer.start_span(f"cache {operation}", start_time=start)
        span.set_attributes({"cache.operation": operation, **attributes})
        span.end(end_time=end)

    def _measure(self, event: CacheEvent) -> None:
        http = event.layer in HTTP_LAYERS
        where = (self._route if http else self._namespace)(event.namespace)
        measured: dict[str, AttributeValue] = {
            "cache.outcome": event.kind,
            "cache.layer": event.layer,
            ("http.route" if http else "cache.namespace"): where,
        }
        if event.reason is not None:
            measured["cache.reason"] = self._reason(event.reason)
        self._events.add(1, measured)
        if event.kind == "invalidation":
            self._removed.add(event.count, measured)
        if event.duration is not None:
            self._duration.record(event.duration, measured)


def _attributes(event: CacheEvent) -> dict[str, AttributeValue]:
    """The event as span attributes: only the fields it has, the key as a hash."""
    attributes: dict[str, AttributeValue] = {
        "cache.outcome": event.kind,
        "cache.layer": event.layer,
    }
    if event.kind in HITS:
        attributes["cache.hit"] = HITS[event.kind]
    if event.namespace is not None:
        name = "http.route" if event.layer in HTTP_LAYERS else "cache.namespace"
        attributes[name] = event.namespace
    if event.reason is not None:
        attributes["cache.reason"] = event.reason
    if event.key is not None:
        attributes["cache.key_hash"] = key_hash(event.key)
    if event.kind in ("invalidation", "replay"):
        attributes["cache.entries"] = event.count
    if event.queued:
        attributes["cache.queued"] = True
    return attributes
