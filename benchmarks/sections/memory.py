"""Section `memory`: get-hit, get-miss and set on a 1k-key working set of small dict values.

Floor: a bare dict behind `async def` get/set. Rows: fastapi-cachekit's CacheService on the
memory backend with its defaults (per-entry TTL, stats, JSON copies), its MemoryBackend alone
(bytes in, bytes out: what the service adds on top), and the peers. Every row's repetition
lasts about 0.1 s (the floor runs ~500k operations, aiocache ~2k), so that all rows are timed
over windows of the same length.
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
    ops: int  # per repetition when `seconds` is None, else for the calibration run
    repeats: int
    seconds: float | None  # how long one repetition of each row lasts (ops scaled to it)
    size: int = 1000


FULL = Params(ops=20_000, repeats=15, seconds=0.1)
QUICK = Params(ops=300, repeats=2, seconds=None)
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
        return await measure_plan(plan, params.repeats, seconds=params.seconds)


def _case(
    op: str, name: str, store: Store, ws: WorkingSet, params: Params, baseline: str | None
) -> Case:
    if op == "set":
        return set_case(name, store, ws, params.ops, baseline=baseline)
    return get_case(name, store, ws, params.ops, baseline=baseline, miss=op == "get-miss")
