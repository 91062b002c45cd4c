"""OpenTelemetryObserver: the cache calls of a request are child spans of the request's server
span, with cache.* attributes (never the key itself), and its metrics count the same events."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fastapi_cachekit import CacheService, MemoryBackend, cached, setup_cache
from fastapi_cachekit.events import CacheEvent, key_hash
from fastapi_cachekit.observers.otel import OpenTelemetryObserver


class Telemetry:
    """An SDK tracer provider and meter provider that keep what they record in memory."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])
        self.observer = OpenTelemetryObserver(self.tracer_provider, self.meter_provider)

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        if data is None:  # nothing was ever measured
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


async def test_cache_spans_are_children_of_the_request_span(telemetry: Telemetry) -> None:
    cache = CacheService(MemoryBackend(), observers=telemetry.observer)
    app = FastAPI()
    setup_cache(app, cache)

    @cached(cache, ttl=60, namespace="squares")
    async def square(n: int) -> int:
        return n * n

    @app.get("/squares/{n}")
    async def squares(n: int) -> dict[str, int]:
        return {"square": await square(n)}

    traced = OpenTelemetryMiddleware(app, tracer_provider=telemetry.tracer_provider)
    transport = httpx.ASGITransport(app=traced)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/squares/3")).json() == {"square": 9}
        assert (await client.get("/squares/3")).json() == {"square": 9}

    spans = telemetry.finished()
    servers = [s for s in spans if s.kind.name == "SERVER"]
    assert len(servers) == 2
    gets = [s for s in spans if s.name == "cache get"]
    # Each request's reads are children of that request's server span, in its trace.
    for server in servers:
        assert server.context is not None
        children = [g for g in gets if g.parent and g.parent.span_id == server.context.span_id]
        assert children, f"no cache span under {server.name}"
        assert all(g.context and g.context.trace_id == server.context.trace_id for g in children)
    outcomes = [g.attributes["cache.outcome"] for g in gets if g.attributes]
    assert outcomes.count("hit") == 1
    assert "miss" in outcomes
    hit = next(g for g in gets if g.attributes and g.attributes["cache.hit"] is True)
    assert hit.attributes is not None
    assert hit.attributes["cache.namespace"] == "squares"
    assert hit.attributes["cache.layer"] == "memory"
    assert hit.attributes["cache.operation"] == "get"
    counted = {p.attributes["cache.outcome"]: p.value for p in telemetry.points("cachekit.events")}
    assert counted["hit"] == 1
    assert counted["miss"] == outcomes.count("miss")
    await cache.close()


def test_events_with_a_duration_are_back_dated_and_measured(telemetry: Telemetry) -> None:
    telemetry.observer.event(
        CacheEvent("invalidation", "service", "users", "tags", count=4, duration=0.25)
    )
    (span,) = telemetry.finished()
    assert span.name == "cache invalidate"
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.end_time - span.start_time == 250_000_000
    assert span.attributes is not None
    assert span.attributes["cache.entries"] == 4
    assert span.attributes["cache.reason"] == "tags"
    (removed,) = telemetry.points("cachekit.invalidated_entries")
    assert removed.value == 4
    (duration,) = telemetry.points("cachekit.operation.duration")
    assert duration.sum == pytest.approx(0.25)


def test_http_decisions_carry_the_route_and_keys_only_as_a_hash(telemetry: Telemetry) -> None:
    key = "http:GET:/items/42?secret=s3cr3t"
    telemetry.observer.event(CacheEvent("hit", "http", "/items/{item_id}", key=key))
    (span,) = telemetry.finished()
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/items/{item_id}"
    assert attributes["cache.key_hash"] == key_hash(key)
    assert not any("s3cr3t" in str(value) for value in attributes.values())


def test_outcomes_that_are_not_calls_are_events_on_the_current_span(
    telemetry: Telemetry,
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        telemetry.observer.event(CacheEvent("fault", "redis", reason="BackendUnavailable"))
        telemetry.observer.event(CacheEvent("breaker_open", "redis"))
    (request,) = telemetry.finished()
    assert [e.name for e in request.events] == ["cachekit.fault", "cachekit.breaker_open"]
    assert request.events[0].attributes == {
        "cache.outcome": "fault",
        "cache.layer": "redis",
        "cache.reason": "BackendUnavailable",
    }


def test_metric_attributes_are_bounded() -> None:
    telemetry = Telemetry()
    observer = OpenTelemetryObserver(
        telemetry.tracer_provider, telemetry.meter_provider, namespace_limit=2
    )
    for n in range(10):
        observer.event(CacheEvent("miss", "memory", f"tenant-{n}"))
    namespaces = {p.attributes["cache.namespace"] for p in telemetry.points("cachekit.events")}
    assert namespaces == {"tenant-0", "tenant-1", "__other__"}


NATIVE = "telemetry" in inspect.signature(FastAPI).parameters


@pytest.mark.skipif(not NATIVE, reason="this FastAPI has no native telemetry (FastAPI(telemetry=))")
async def test_under_fastapis_own_telemetry_cache_spans_nest_under_the_request(
    telemetry: Telemetry,
) -> None:
    cache = CacheService(MemoryBackend(), observers=telemetry.observer)
    app = FastAPI(telemetry={"tracer_provider": telemetry.tracer_provider})  # type: ignore[call-arg,unused-ignore]
    setup_cache(app, cache)

    @cached(cache, ttl=60)
    async def square(n: int) -> int:
        return n * n

    @app.get("/squares/{n}")
    async def squares(n: int) -> int:
        return await square(n)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        await client.get("/squares/2")
    spans = telemetry.finished()
    by_id = {s.context.span_id: s for s in spans if s.context}
    (server,) = [s for s in spans if s.kind.name == "SERVER"]
    (read,) = [s for s in spans if s.name == "cache get"]
    chain = []
    while read.parent is not None:
        read = by_id[read.parent.span_id]
        chain.append(read.name)
    assert chain[-1] == server.name == "GET /squares/{n}"
    await cache.close()


def test_spans_or_metrics_can_be_left_out() -> None:
    metrics_only, spans_only = Telemetry(), Telemetry()
    event = CacheEvent("hit", "memory", "users")
    OpenTelemetryObserver(
        metrics_only.tracer_provider, metrics_only.meter_provider, spans=False
    ).event(event)
    OpenTelemetryObserver(
        spans_only.tracer_provider, spans_only.meter_provider, metrics=False
    ).event(event)
    assert metrics_only.finished() == []
    assert [p.value for p in metrics_only.points("cachekit.events")] == [1]
    assert [s.name for s in spans_only.finished()] == ["cache get"]
    assert spans_only.points("cachekit.events") == []
