"""Section `hybrid`: the memory tier (L1) and the Redis tier (L2) of the hybrid backend.

- L1 hit: a 1k-key working set that fits in L1, against the memory backend's hit (the floor);
- L2 hit: a working set ten times larger than L1, read in a cycle, so every read misses L1
  (LRU) and is answered by Redis (then promoted), against a raw redis-py GET.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ..harness import Case, Row, measure_plan, unavailable_row
from ..peers import TTL_SECONDS, cachekit_store
from ..redis_server import redis_server
from ..workload import Store, WorkingSet, get_case, prefill
from .common import Factory, open_stores
from .redis_common import backend_missing, raw_store, skipped_rows

__all__ = ["run"]

MEMORY = "get-hit: cachekit CacheService, memory backend"
L1 = "L1 hit: cachekit CacheService, hybrid"
RAW = "GET: floor: raw redis-py"
L2 = "L2 hit: cachekit CacheService, hybrid"


@dataclass(frozen=True)
class Params:
    ops: int
    repeats: int
    size: int  # the L1 working set, and the L1 size of the L2 rows' service x 10
    l2_l1_items: int


FULL = Params(ops=5000, repeats=5, size=1000, l2_l1_items=100)
QUICK = Params(ops=50, repeats=2, size=100, l2_l1_items=10)


async def _hybrid_store(url: str, prefix: str, l1_items: int) -> Store:
    from fastapi_cachekit import create_cache

    service: Any = create_cache(
        backend="hybrid",
        redis_url=url,
        key_prefix=prefix,
        max_memory_items=l1_items,
        default_ttl_seconds=TTL_SECONDS,
        enable_stats=True,
        serializer="json",
    )
    return Store(service.get, service.set, service.close, note=f"L1 of {l1_items} entries")


def _factories(url: str, params: Params) -> list[tuple[str, Factory]]:
    return [
        (MEMORY, functools.partial(cachekit_store, params.size)),
        (L1, functools.partial(_hybrid_store, url, "bench-hy1", params.size)),
        (RAW, functools.partial(raw_store, url)),
        (L2, functools.partial(_hybrid_store, url, "bench-hy2", params.l2_l1_items)),
    ]


async def _rows(url: str, params: Params) -> list[Row]:
    sets = {
        MEMORY: WorkingSet(params.size, prefix="mem"),
        L1: WorkingSet(params.size, prefix="l1"),
        RAW: WorkingSet(params.size, prefix="raw"),
        L2: WorkingSet(params.l2_l1_items * 10, prefix="l2"),
    }
    baselines = {MEMORY: None, L1: MEMORY, RAW: None, L2: RAW}
    async with open_stores(_factories(url, params)) as (stores, unavailable):
        plan: list[Case | Row] = []
        for name, ws in sets.items():
            if name in unavailable:
                plan.append(unavailable[name])
                continue
            await prefill(stores[name], ws, tasks=10)
            plan.append(get_case(name, stores[name], ws, params.ops, baseline=baselines[name]))
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
