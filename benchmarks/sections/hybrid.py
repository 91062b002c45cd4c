"""Section `hybrid`: the memory tier (L1) and the Redis tier (L2) of the hybrid backend.

- L1 hit: a 1k-key working set that fits in L1, against the memory backend's hit (the floor);
- L2 hit: a working set ten times larger than L1, read in a cycle, so every read misses L1
  (LRU) and is answered by Redis (then promoted), against a raw redis-py GET;
- set: the hybrid service's set (to Redis, with the announcement to the other processes,
  then to L1) and the Redis service's, against a raw redis-py SET;
- invalidate a tag of 2 entries: the hybrid service against the Redis service (the writes
  that fill the tag before each invalidation are not timed).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

from ..harness import Case, Row, measure_plan, unavailable_row
from ..peers import TTL_SECONDS, cachekit_store
from ..redis_server import redis_server
from ..workload import Store, WorkingSet, get_case, prefill, set_case
from .common import Factory, open_stores
from .redis_common import backend_missing, raw_store, skipped_rows

__all__ = ["run"]

MEMORY = "get-hit: cachekit CacheService, memory backend"
L1 = "L1 hit: cachekit CacheService, hybrid"
RAW = "GET: floor: raw redis-py"
L2 = "L2 hit: cachekit CacheService, hybrid"
RAW_SET = "SET: floor: raw redis-py"
REDIS_SET = "set: cachekit CacheService, redis"
HYBRID_SET = "set: cachekit CacheService, hybrid"
REDIS_TAG = "invalidate a tag of 2 entries: cachekit CacheService, redis"
HYBRID_TAG = "invalidate a tag of 2 entries: cachekit CacheService, hybrid"


@dataclass(frozen=True)
class Params:
    ops: int
    repeats: int
    size: int  # the L1 working set, and the L1 size of the L2 rows' service x 10
    l2_l1_items: int


FULL = Params(ops=5000, repeats=5, size=1000, l2_l1_items=100)
QUICK = Params(ops=50, repeats=2, size=100, l2_l1_items=10)


def _service(url: str, backend: str, prefix: str, l1_items: int) -> Any:
    from fastapi_cachekit import create_cache

    return create_cache(
        backend=backend,
        redis_url=url,
        key_prefix=prefix,
        max_memory_items=l1_items,
        default_ttl_seconds=TTL_SECONDS,
        enable_stats=True,
        serializer="json",
    )


async def _hybrid_store(url: str, prefix: str, l1_items: int) -> Store:
    service = _service(url, "hybrid", prefix, l1_items)
    return Store(service.get, service.set, service.close, note=f"L1 of {l1_items} entries")


async def _redis_store(url: str, prefix: str, _l1_items: int) -> Store:
    service = _service(url, "redis", prefix, 1)
    return Store(service.get, service.set, service.close, note="defaults: TTL, stats, JSON")


def _factories(url: str, params: Params) -> list[tuple[str, Factory]]:
    return [
        (MEMORY, functools.partial(cachekit_store, params.size)),
        (L1, functools.partial(_hybrid_store, url, "bench-hy1", params.size)),
        (RAW, functools.partial(raw_store, url)),
        (L2, functools.partial(_hybrid_store, url, "bench-hy2", params.l2_l1_items)),
        (RAW_SET, functools.partial(raw_store, url)),
        (REDIS_SET, functools.partial(_redis_store, url, "bench-rs", 0)),
        (HYBRID_SET, functools.partial(_hybrid_store, url, "bench-hs", params.size)),
    ]


def _tag_case(name: str, service: Any, ops: int, baseline: str | None) -> Case:
    """`ops` invalidations, each of a fresh tag two entries carry (written untimed)."""
    value = {"id": 1, "name": "product 000001"}
    rounds = iter(range(1_000_000_000))

    async def run(n: int) -> float:
        elapsed = 0.0
        for _ in range(n):
            tag = f"tag-{next(rounds)}"
            await service.set(f"{tag}:a", value, tags=[tag])
            await service.set(f"{tag}:b", value, tags=[tag])
            start = time.perf_counter()
            await service.invalidate_tags([tag])
            elapsed += time.perf_counter() - start
        return elapsed

    return Case(name, run, ops, baseline=baseline)


async def _rows(url: str, params: Params) -> list[Row]:
    sets = {
        MEMORY: WorkingSet(params.size, prefix="mem"),
        L1: WorkingSet(params.size, prefix="l1"),
        RAW: WorkingSet(params.size, prefix="raw"),
        L2: WorkingSet(params.l2_l1_items * 10, prefix="l2"),
        RAW_SET: WorkingSet(params.size, prefix="rawset"),
        REDIS_SET: WorkingSet(params.size, prefix="rset"),
        HYBRID_SET: WorkingSet(params.size, prefix="hset"),
    }
    tag_services = {
        REDIS_TAG: _service(url, "redis", "bench-rt", 1),
        HYBRID_TAG: _service(url, "hybrid", "bench-ht", params.size),
    }
    try:
        return await _measure(url, params, sets, tag_services)
    finally:
        for service in tag_services.values():
            await service.close()


async def _measure(
    url: str, params: Params, sets: dict[str, WorkingSet], tag_services: dict[str, Any]
) -> list[Row]:
    baselines = {MEMORY: None, L1: MEMORY, RAW: None, L2: RAW}
    set_baselines = {RAW_SET: None, REDIS_SET: RAW_SET, HYBRID_SET: RAW_SET}
    async with open_stores(_factories(url, params)) as (stores, unavailable):
        plan: list[Case | Row] = []
        for name, ws in sets.items():
            if name in unavailable:
                plan.append(unavailable[name])
                continue
            store = stores[name]
            await prefill(store, ws, tasks=10)
            if name in set_baselines:
                plan.append(set_case(name, store, ws, params.ops, baseline=set_baselines[name]))
            else:
                plan.append(get_case(name, store, ws, params.ops, baseline=baselines[name]))
        tag_ops = max(1, params.ops // 5)
        plan.append(_tag_case(REDIS_TAG, tag_services[REDIS_TAG], tag_ops, None))
        plan.append(_tag_case(HYBRID_TAG, tag_services[HYBRID_TAG], tag_ops, REDIS_TAG))
        return await measure_plan(plan, params.repeats)


async def run(quick: bool) -> list[Row]:
    skipped = skipped_rows("hybrid")
    if skipped is not None:
        return skipped
    reason = backend_missing("hybrid") or backend_missing("redis")
    if reason is not None:
        return [unavailable_row(name, reason) for name in (L1, L2)]
    params = QUICK if quick else FULL
    with redis_server() as server:
        return await _rows(server.url, params)
