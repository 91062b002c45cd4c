"""Section `memory`: get-hit, get-miss and set on a 1k-key working set of small dict values.

Floor: a bare dict behind `async def` get/set. Rows: fastapi-cachekit's CacheService on the
memory backend with its defaults (per-entry TTL, stats, JSON copies), its MemoryBackend alone
(bytes in, bytes out: what the service adds on top), and the peers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..harness import Case, Row, measure_plan
from ..peers import MEMORY_STORES
from ..workload import Store, WorkingSet, get_case, prefill, set_case
from .common import Factory, open_stores, placeholder

__all__ = ["run"]


@dataclass(frozen=True)
class Params:
    ops: int
    repeats: int
    size: int = 1000


FULL = Params(ops=50_000, repeats=7)
QUICK = Params(ops=300, repeats=2)
OPERATIONS = ("get-hit", "get-miss", "set")


async def run(quick: bool) -> list[Row]:
    params = QUICK if quick else FULL
    ws = WorkingSet(params.size)
    factories: list[tuple[str, Factory]] = [
        (name, functools.partial(factory, params.size)) for name, factory in MEMORY_STORES
    ]
    async with open_stores(factories) as (stores, missing):
        for store in stores.values():
            await prefill(store, ws)
        plan: list[Case | Row] = []
        floor = MEMORY_STORES[0][0]
        for op in OPERATIONS:
            for name, _ in MEMORY_STORES:
                row_name = f"{op}: {name}"
                baseline = None if name == floor else f"{op}: {floor}"
                if name in missing:
                    plan.append(placeholder(missing[name], row_name))
                else:
                    plan.append(_case(op, row_name, stores[name], ws, params, baseline))
        return await measure_plan(plan, params.repeats)


def _case(
    op: str, name: str, store: Store, ws: WorkingSet, params: Params, baseline: str | None
) -> Case:
    if op == "set":
        return set_case(name, store, ws, params.ops, baseline=baseline)
    return get_case(name, store, ws, params.ops, baseline=baseline, miss=op == "get-miss")
