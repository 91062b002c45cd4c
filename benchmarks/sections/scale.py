"""Section `scale`: does the memory backend's cost depend on how much it holds?

- invalidating a tag of 10 entries in a cache of 1k entries vs one of 1M (the 10 entries are
  written again, untimed, before each timed `invalidate_tags`);
- memory per entry at 100k entries: tracemalloc's growth / entries, minus the value's bytes
  (the JSON the cache stores), without and with a namespace and a tag.
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from dataclasses import dataclass

import orjson

from fastapi_cachekit import CacheService, MemoryBackend, create_cache

from ..harness import Case, Row, info_row, measure_plan
from ..peers import TTL_SECONDS
from ..workload import WorkingSet, item_value

__all__ = ["run"]

TAGGED = 10
TAG = "hot"


@dataclass(frozen=True)
class Params:
    small: int
    large: int
    invalidations: int
    repeats: int
    bytes_entries: int


FULL = Params(small=1_000, large=1_000_000, invalidations=200, repeats=5, bytes_entries=100_000)
QUICK = Params(small=1_000, large=20_000, invalidations=20, repeats=2, bytes_entries=5_000)


def _size_label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _service(max_items: int) -> CacheService:
    return create_cache(
        backend="memory",
        max_memory_items=max_items,
        default_ttl_seconds=TTL_SECONDS,
        enable_stats=True,
        serializer="json",
    )


async def _fill(backend: MemoryBackend, count: int) -> None:
    """Store `count` untagged entries through the backend, with the collector paused."""
    data = orjson.dumps(item_value(0))
    gc.disable()
    try:
        for i in range(count):
            await backend.set(f"bg:{i}", data, ttl=float(TTL_SECONDS), namespace=None, tags=())
    finally:
        gc.enable()


def _invalidation_case(service: CacheService, name: str, ops: int, baseline: str | None) -> Case:
    tagged = WorkingSet(TAGGED, prefix="tagged")

    async def run(n: int) -> float:
        elapsed = 0.0
        for _ in range(n):
            for key, value in zip(tagged.keys, tagged.values, strict=True):
                await service.set(key, value, tags=[TAG])
            start = time.perf_counter()
            await service.invalidate_tags([TAG])
            elapsed += time.perf_counter() - start
        return elapsed

    note = f"µs per invalidate_tags call removing {TAGGED}"
    return Case(name, run, ops, baseline, note, warmup=min(ops, 10))


async def _invalidation_rows(params: Params) -> list[Row]:
    plan: list[Case | Row] = []
    services: list[CacheService] = []
    baseline: str | None = None
    try:
        for size in (params.small, params.large):
            service = _service(size + TAGGED)
            services.append(service)
            backend = service.backend
            assert isinstance(backend, MemoryBackend)
            build_start = time.perf_counter()
            await _fill(backend, size - TAGGED)
            name = f"invalidate {TAGGED} by tag among {_size_label(size)}"
            case = _invalidation_case(service, name, params.invalidations, baseline)
            plan.append(case)
            baseline = baseline or name
            seconds = time.perf_counter() - build_start
            print(f"scale: built {size:,} entries in {seconds:.1f} s", file=sys.stderr)
        return await measure_plan(plan, params.repeats)
    finally:
        for service in services:
            await service.close()


async def _bytes_per_entry(entries: int, *, tagged: bool) -> Row:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        service = _service(entries)
        for i in range(entries):
            if tagged:
                tags = [f"g{i % 100}"]
                await service.set(f"item:{i}", item_value(i), namespace="products", tags=tags)
            else:
                await service.set(f"item:{i}", item_value(i))
        gc.collect()
        growth = (tracemalloc.get_traced_memory()[0] - before) / entries
    finally:
        tracemalloc.stop()
    await service.close()
    value = sum(len(orjson.dumps(item_value(i))) for i in range(entries)) / entries
    overhead = growth - value
    label = "namespace + 1 tag" if tagged else "no namespace, no tag"
    return info_row(
        f"bytes per entry at {_size_label(entries)} entries ({label})",
        f"{overhead:.0f} B beyond the value ({growth:.0f} B growth - {value:.0f} B of JSON);"
        " keys like item:12345",
        growth_bytes_per_entry=growth,
        value_bytes_per_entry=value,
        overhead_bytes_per_entry=overhead,
        entries=entries,
    )


async def run(quick: bool) -> list[Row]:
    params = QUICK if quick else FULL
    rows = await _invalidation_rows(params)
    rows.append(await _bytes_per_entry(params.bytes_entries, tagged=False))
    rows.append(await _bytes_per_entry(params.bytes_entries, tagged=True))
    return rows
