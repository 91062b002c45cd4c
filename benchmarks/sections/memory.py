"""Section `memory`: get-hit, get-miss and set on a 1k-key working set of small dict values.

Floor: a bare dict behind `async def` get/set. Rows: fastapi-cachekit's CacheService on the
memory backend with its defaults (per-entry TTL, stats, JSON copies), the same with a no-op
observer (what being observed costs: compared with the row without), its MemoryBackend alone
(bytes in, bytes out: what the service adds on top), and the peers. Every row's repetition
lasts about 0.1 s (the floor runs ~500k operations, aiocache ~2k), so that all rows are timed
over windows of the same length.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

from ..harness import Case, Row, compare, measure_plan
from ..peers import MEMORY_STORES, StoreFactory, cachekit_store
from ..workload import Store, WorkingSet, get_case, prefill, set_case
from .common import Factory, NoOpObserver, open_stores, placeholder

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
SERVICE = "cachekit CacheService"
OBSERVED = "cachekit CacheService + a no-op observer"


async def observed_store(size: int) -> Store:
    """The CacheService row's store, observed."""
    store = await cachekit_store(size)
    service = store.get.__self__  # type: ignore[attr-defined]  # its get is the service's
    service.add_observer(NoOpObserver())
    return dataclasses.replace(store, note="every event built and handed to an observer")


STORES: list[tuple[str, StoreFactory]] = [*MEMORY_STORES[:2], (OBSERVED, observed_store)]
STORES += MEMORY_STORES[2:]


async def run(quick: bool) -> list[Row]:
    params = QUICK if quick else FULL
    ws = WorkingSet(params.size)
    factories: list[tuple[str, Factory]] = [
        (name, functools.partial(factory, params.size)) for name, factory in STORES
    ]
    async with open_stores(factories) as (stores, missing):
        for store in stores.values():
            await prefill(store, ws)
        plan: list[Case | Row] = []
        floor = MEMORY_STORES[0][0]
        for op in OPERATIONS:
            for name, _ in STORES:
                row_name = f"{op}: {name}"
                baseline = None if name == floor else f"{op}: {floor}"
                if name in missing:
                    plan.append(placeholder(missing[name], row_name))
                else:
                    plan.append(_case(op, row_name, stores[name], ws, params, baseline))
        rows = await measure_plan(plan, params.repeats, seconds=params.seconds)
    for op in OPERATIONS:
        compare(rows, f"{op}: {OBSERVED}", f"{op}: {SERVICE}")
    return rows


def _case(
    op: str, name: str, store: Store, ws: WorkingSet, params: Params, baseline: str | None
) -> Case:
    if op == "set":
        return set_case(name, store, ws, params.ops, baseline=baseline)
    return get_case(name, store, ws, params.ops, baseline=baseline, miss=op == "get-miss")
