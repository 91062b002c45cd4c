"""What the key-value rows run: a working set of small dict values, and the loops over it.

Every store is driven through the same two loop shapes (`for key in keys: await get(key)` and
its `set` twin), sequentially or split over concurrent tasks, so rows differ only in the
store's own calls.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .harness import Case

__all__ = [
    "GetFn",
    "SetFn",
    "Store",
    "WorkingSet",
    "get_case",
    "item_value",
    "noop_close",
    "prefill",
    "set_case",
]

GetFn = Callable[[str], Awaitable[Any]]
SetFn = Callable[[str, Any], Awaitable[Any]]


async def noop_close() -> None:
    """Nothing to release."""


@dataclass(frozen=True)
class Store:
    """A cache under test, seen through `get(key)` and `set(key, value)`.

    `raw=True`: `set` takes the value's pre-encoded bytes (floors and bare backends), else the
    value itself (a dict).
    """

    get: GetFn
    set: SetFn
    close: Callable[[], Awaitable[None]] = noop_close
    raw: bool = False
    note: str = ""


def item_value(i: int) -> dict[str, Any]:
    """The small dict value stored under the i-th key."""
    return {"id": i, "name": f"product {i:06d}"}


@dataclass
class WorkingSet:
    """`size` keys with small dict values (and their JSON bytes), cycled over for `n` ops.

    The op lists are built once per shape and kept, so no timed loop pays for building them.
    """

    size: int
    prefix: str = "item"
    keys: list[str] = field(init=False)
    values: list[dict[str, Any]] = field(init=False)
    encoded: list[bytes] = field(init=False)
    _memo: dict[tuple[Any, ...], Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = [f"{self.prefix}:{i}" for i in range(self.size)]
        self.values = [item_value(i) for i in range(self.size)]
        self.encoded = [orjson.dumps(value) for value in self.values]

    def get_ops(self, n: int, tasks: int, miss: bool = False) -> list[list[str]]:
        """`n` keys to get, dealt into `tasks` lists (never-stored keys when `miss`)."""
        memo_key = ("get", n, tasks, miss)
        if memo_key not in self._memo:
            source = [f"missing:{i}" for i in range(self.size)] if miss else self.keys
            keys = list(itertools.islice(itertools.cycle(source), n))
            self._memo[memo_key] = [keys[i::tasks] for i in range(tasks)]
        ops: list[list[str]] = self._memo[memo_key]
        return ops

    def set_ops(self, n: int, tasks: int, raw: bool) -> list[list[tuple[str, Any]]]:
        """`n` (key, value) pairs to set, dealt into `tasks` lists; values as bytes if `raw`."""
        memo_key = ("set", n, tasks, raw)
        if memo_key not in self._memo:
            values = self.encoded if raw else self.values
            pairs = list(itertools.islice(itertools.cycle(zip(self.keys, values, strict=True)), n))
            self._memo[memo_key] = [pairs[i::tasks] for i in range(tasks)]
        ops: list[list[tuple[str, Any]]] = self._memo[memo_key]
        return ops


async def prefill(store: Store, ws: WorkingSet, tasks: int = 1) -> None:
    """Store every key of the working set."""
    await _gather(_set_all(store.set, chunk) for chunk in ws.set_ops(ws.size, tasks, store.raw))


async def _set_all(set_: SetFn, pairs: Sequence[tuple[str, Any]]) -> None:
    for key, value in pairs:
        await set_(key, value)


async def _get_all(get: GetFn, keys: Sequence[str]) -> None:
    for key in keys:
        await get(key)


async def _gather(bodies: Iterable[Coroutine[Any, Any, None]]) -> None:
    coros = list(bodies)
    if len(coros) == 1:
        await coros[0]
    else:
        await asyncio.gather(*coros)


def get_case(
    name: str,
    store: Store,
    ws: WorkingSet,
    ops: int,
    *,
    baseline: str | None,
    miss: bool = False,
    tasks: int = 1,
) -> Case:
    """`ops` gets of working-set keys (never-stored keys when `miss`) over `tasks` tasks."""

    async def run(n: int) -> None:
        await _gather(_get_all(store.get, chunk) for chunk in ws.get_ops(n, tasks, miss))

    ws.get_ops(ops, tasks, miss)  # built now, so that no timed repetition builds it
    return Case(name, run, ops, baseline, store.note, warmup=min(ops, 1000))


def set_case(
    name: str, store: Store, ws: WorkingSet, ops: int, *, baseline: str | None, tasks: int = 1
) -> Case:
    """`ops` sets (overwrites) of working-set keys over `tasks` tasks."""

    async def run(n: int) -> None:
        await _gather(_set_all(store.set, chunk) for chunk in ws.set_ops(n, tasks, store.raw))

    ws.set_ops(ops, tasks, store.raw)  # built now, so that no timed repetition builds it
    return Case(name, run, ops, baseline, store.note, warmup=min(ops, 1000))
