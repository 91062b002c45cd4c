"""PrometheusObserver: every event kind lands in its metric, labels stay bounded, and an app's
/metrics agrees with its admin stats after a scripted load (one process; the workers test
does it with two)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from fastapi_cachekit import CacheService, ConfigurationError, MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.events import CacheEvent
from fastapi_cachekit.fastapi.metrics import metrics_router
from fastapi_cachekit.observers.labels import OTHER
from fastapi_cachekit.observers.prometheus import PrometheusObserver
from tests.redis_servers import RedisServer

from .metrics_app import build_app
from .scrape import Scrape

# The script: (path, requests). Each path's first request misses and stores, the rest hit.
SCRIPT = [("/items/1", 3), ("/items/2", 2), ("/pages/1", 3), ("/squares/3", 3)]
EXPECTED_HITS = sum(count - 1 for _, count in SCRIPT)


def scrape(observer: PrometheusObserver) -> Scrape:
    return Scrape(observer.render()[0].decode())


def test_each_event_kind_lands_in_its_metric() -> None:
    observer = PrometheusObserver(CollectorRegistry())
    events = [
        CacheEvent("hit", "memory", "users"),
        CacheEvent("miss", "redis", "users"),
        CacheEvent("stale_served", "http", "/items/{item_id}"),
        CacheEvent("revalidated", "route", "/items/{item_id}"),
        CacheEvent("stored", "redis", "users"),
        CacheEvent("not_stored", "http", "/items/{item_id}", reason="no-store"),
        CacheEvent("coalesced", "service", "users"),
        CacheEvent("coalesced", "http", "/items/{item_id}"),
        CacheEvent("lock_wait", "redis", "users", duration=0.02),
        CacheEvent("bypass", "service"),
        CacheEvent("fault", "redis", reason="BackendUnavailable"),
        CacheEvent("invalidation", "service", "users", "tags", count=3, duration=0.004),
        CacheEvent("invalidation", "service", None, "key", count=1, queued=True),
        CacheEvent("breaker_open", "redis"),
        CacheEvent("replay", "redis", count=1),
    ]
    for event in events:
        observer.event(event)
    s = scrape(observer)
    t = s.total
    assert t("cachekit_lookups_total", layer="memory", namespace="users", outcome="hit") == 1
    assert t("cachekit_lookups_total", layer="redis", namespace="users", outcome="miss") == 1
    assert t("cachekit_http_requests_total", layer="http", outcome="stale_served") == 1
    route = {"layer": "route", "route": "/items/{item_id}"}
    assert t("cachekit_http_requests_total", outcome="revalidated", **route) == 1
    assert t("cachekit_writes_total", layer="redis", outcome="stored", reason="") == 1
    assert t("cachekit_http_requests_total", outcome="not_stored", reason="no-store") == 1
    assert t("cachekit_http_requests_total", outcome="coalesced") == 1
    assert t("cachekit_coalesced_total", layer="service", namespace="users") == 1
    assert t("cachekit_fill_lock_wait_seconds_sum", layer="redis") == pytest.approx(0.02)
    assert t("cachekit_bypasses_total", layer="service") == 1
    assert t("cachekit_faults_total", layer="redis", reason="BackendUnavailable") == 1
    assert t("cachekit_invalidations_total", kind="tags", queued="false") == 1
    assert t("cachekit_invalidations_total", kind="key", queued="true") == 1
    assert t("cachekit_invalidated_entries_total", kind="tags") == 3
    assert t("cachekit_invalidation_duration_seconds_count", kind="tags") == 1
    assert t("cachekit_circuit_breaker_transitions_total", state="open") == 1
    assert t("cachekit_circuit_breaker_open") == 1
    assert t("cachekit_replayed_invalidations_total") == 1
    assert t("cachekit_pending_invalidations") == 0  # one queued, then replayed
    observer.event(CacheEvent("breaker_closed", "redis"))
    assert scrape(observer).total("cachekit_circuit_breaker_open") == 0


def test_labels_are_bounded() -> None:
    observer = PrometheusObserver(CollectorRegistry(), namespace_limit=3, route_limit=2)
    for n in range(50):
        observer.event(CacheEvent("hit", "memory", f"tenant-{n}"))
        observer.event(CacheEvent("miss", "http", f"/route-{n}/{{id}}"))
    s = scrape(observer)
    assert s.values("cachekit_lookups_total", "namespace") == {
        "tenant-0", "tenant-1", "tenant-2", OTHER,
    }  # fmt: skip
    assert s.values("cachekit_http_requests_total", "route") == {
        "/route-0/{id}",
        "/route-1/{id}",
        OTHER,
    }
    assert s.total("cachekit_lookups_total") == 50  # nothing is lost, only grouped
    assert s.total("cachekit_lookups_total", namespace=OTHER) == 47


def test_a_second_observer_on_one_registry_is_refused_with_the_fix() -> None:
    registry = CollectorRegistry()
    PrometheusObserver(registry)
    with pytest.raises(ValueError, match="share one PrometheusObserver"):
        PrometheusObserver(registry)
    with pytest.raises(ValueError, match="namespace_limit must be at least 1"):
        PrometheusObserver(CollectorRegistry(), namespace_limit=0)


async def test_metrics_match_the_admin_stats_after_a_scripted_load() -> None:
    cache = CacheService(MemoryBackend())
    app = build_app(cache, PrometheusObserver(CollectorRegistry()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path, count in SCRIPT:
            for _ in range(count):
                assert (await client.get(path)).status_code == 200
        metrics = await client.get("/metrics")
        stats = (await client.get("/admin/cache/stats")).json()
    assert metrics.headers["cache-control"] == "no-store"
    assert metrics.headers["content-type"].startswith("text/plain")
    s = Scrape(metrics.text)
    # "Match": the service's reads, whichever layer asked, are the admin's hits and misses.
    assert s.total("cachekit_lookups_total", outcome="hit") == stats["total_hits"] == EXPECTED_HITS
    assert s.total("cachekit_lookups_total", outcome="miss") == stats["total_misses"]
    assert s.total("cachekit_entries") == stats["total_entries"] == len(SCRIPT)
    assert s.total("cachekit_memory_bytes") == stats["memory_usage_bytes"]
    assert s.values("cachekit_lookups_total", "namespace") >= {"squares"}
    await cache.close()


async def test_a_token_protects_the_route() -> None:
    cache = CacheService(MemoryBackend())
    app = FastAPI()
    token = "metrics-token-long-enough"
    router = metrics_router(cache, PrometheusObserver(CollectorRegistry()), token=token)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        refused = await client.get("/metrics")
        wrong = await client.get(
            "/metrics", headers={"authorization": "Bearer nope-nope-nope-nope"}
        )
        allowed = await client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
    assert "cachekit_entries 0.0" in allowed.text
    with pytest.raises(ConfigurationError, match="metrics token"):
        metrics_router(cache, PrometheusObserver(CollectorRegistry()), token="short")
    await cache.close()


def test_setup_metrics_needs_a_cache() -> None:
    from fastapi_cachekit.fastapi.metrics import setup_metrics

    with pytest.raises(ConfigurationError, match="call setup_cache"):
        setup_metrics(FastAPI(), observer=PrometheusObserver(CollectorRegistry()))


def test_without_the_extra_the_import_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "fastapi_cachekit.observers.prometheus")
    with pytest.raises(ImportError, match=r"pip install 'fastapi-cache-kit\[prometheus\]'"):
        importlib.import_module("fastapi_cachekit.observers.prometheus")


def test_importing_the_package_does_not_need_prometheus_client() -> None:
    # (Not opentelemetry: recent FastAPI releases depend on opentelemetry-api themselves.)
    code = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None  # as if not installed\n"
        "import fastapi_cachekit, fastapi_cachekit.fastapi, fastapi_cachekit.observers\n"
        "print('imported')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "imported"


@pytest.mark.redis
async def test_a_scrape_shows_a_stopped_redis_as_open_breaker_and_pending_work(
    redis_server: RedisServer,
) -> None:
    cache = CacheService(RedisBackend(redis_server.url, breaker_max_backoff=60))
    app = FastAPI()
    app.include_router(metrics_router(cache, PrometheusObserver(CollectorRegistry())))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        healthy = Scrape((await client.get("/metrics")).text)
        redis_server.stop()
        await cache.get("a")  # fails: the breaker opens
        await cache.invalidate_tags(["t"])  # queued for when Redis answers
        down = Scrape((await client.get("/metrics")).text)
    assert healthy.total("cachekit_circuit_breaker_open") == 0
    assert down.total("cachekit_circuit_breaker_open") == 1
    assert down.total("cachekit_pending_invalidations") == 1
    redis_server.start()
    await cache.close()
