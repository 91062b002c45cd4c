"""Section `workers`: the CacheMiddleware hit under uvicorn with 1 and 2 workers, on the Redis
and the hybrid backends, so that one can see how a hit scales with processes on this machine.

Every server (one per backend and worker count) shares one redis-server this run starts; the
load is the `http-server` section's (wrk, or the httpx loop when wrk is missing), interleaved
the same way. A 2-worker row's ratio is to the 1-worker row of its backend: below 1 it scales.
The machine's core count goes in each row's note: the load generator, redis-server and the
workers share those cores, so 2 workers cannot double anything on 2 cores.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from ..apps import ITEM, PATH, TTL_SECONDS, AppSpec
from ..harness import Row, row_from_samples, unavailable_row, with_ratios
from ..load import describe
from ..redis_server import redis_server
from .http_server import FULL, QUICK, check, measure_servers, servers_of
from .redis_common import backend_missing, skipped_rows

__all__ = ["make_hybrid_app", "make_redis_app", "run"]

_URL_VARIABLE = "CACHEKIT_BENCH_REDIS_URL"
# 16 connections: enough to keep 2 workers busy, few enough for the httpx loop (used when wrk
# is missing), whose throughput collapses with 50 (about 70 requests/s here).
_FULL = dataclasses.replace(FULL, connections=16)
_WORKERS = (1, 2)


def _middleware_app(backend: str) -> FastAPI:
    from fastapi_cachekit import CacheMiddleware, create_cache

    service: Any = create_cache(
        backend=backend,
        redis_url=os.environ[_URL_VARIABLE],
        key_prefix=f"bench-workers-{backend}",
        default_ttl_seconds=3600,
        serializer="json",
    )
    app = FastAPI()

    @app.get(PATH)
    async def item() -> dict[str, Any]:
        return dict(ITEM)

    app.add_middleware(CacheMiddleware, ttl=TTL_SECONDS, cache=service)
    return app


def make_redis_app() -> FastAPI:
    """The uncached endpoint behind CacheMiddleware, on the Redis backend."""
    return _middleware_app("redis")


def make_hybrid_app() -> FastAPI:
    """The same, on the hybrid backend (hits come from each worker's L1)."""
    return _middleware_app("hybrid")


@dataclass(frozen=True)
class _WorkerApp(AppSpec):
    """An app of this module (uvicorn imports its factory from here)."""

    @property
    def target(self) -> str:
        return f"{__name__}:{self.factory.__name__}"


def _name(backend: str, workers: int) -> str:
    return f"CacheMiddleware hit, {backend}, {workers} worker{'s' if workers > 1 else ''}"


def _plan(quick: bool) -> list[tuple[str, int, AppSpec]]:
    """(backend, workers, app) of each row, in table order; a quick run (which only shows
    that the section runs) starts one server: the hybrid backend's, with 2 workers."""
    factories = {"redis": make_redis_app, "hybrid": make_hybrid_app}
    hit = ("cache-status", "hit")
    plan = [
        (backend, workers, _WorkerApp(_name(backend, workers), factory, hit_header=hit))
        for backend, factory in factories.items()
        for workers in _WORKERS
    ]
    return plan[-1:] if quick else plan


async def run(quick: bool) -> list[Row]:
    skipped = skipped_rows("workers")
    if skipped is not None:
        return skipped
    plan = _plan(quick)
    reason = backend_missing("hybrid") or backend_missing("redis")
    if reason is not None:
        return [unavailable_row(spec.name, reason) for _, _, spec in plan]
    params = QUICK if quick else _FULL
    specs, workers = [spec for _, _, spec in plan], [count for _, count, _ in plan]
    with redis_server() as server, servers_of(specs, workers, {_URL_VARIABLE: server.url}) as up:
        await check(up)
        samples = await measure_servers(up, params)
    note = f"{os.cpu_count()} cores; " + describe(
        params.threads, params.connections, params.duration
    )
    rows = [
        row_from_samples(
            spec.name,
            samples[spec.name],
            None,
            baseline=None if count == 1 or quick else _name(backend, 1),
            note=note,
        )
        for backend, count, spec in plan
    ]
    return with_ratios(rows)
