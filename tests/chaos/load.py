"""The load generator: concurrent readers of both cached endpoints and one tag-invalidating
writer, over loopback, bounded in request count and in time.

Every request is recorded with its start and end (time.monotonic of this process), so the
metrics can place it before, during or after a fault. One writer, so the writes of an item are
acknowledged in version order.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx

__all__ = ["ENDPOINTS", "LoadPlan", "Read", "Recorder", "Write", "generate", "item_names"]

ENDPOINTS = ("route", "mw")  # @cached_route and CacheMiddleware
_REQUEST_TIMEOUT = 5.0  # a fail-open cache answers far sooner; longer counts as failed


@dataclass(frozen=True)
class LoadPlan:
    """How much load: items read, concurrent readers, the pause between writes."""

    items: int
    readers: int
    write_pause: float
    max_requests: int


@dataclass(frozen=True)
class Read:
    item: str
    endpoint: str
    start: float
    end: float
    version: int | None = None  # None: the request failed
    fill: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Write:
    item: str
    start: float
    end: float
    version: int | None = None  # the acknowledged version; None: the write failed
    error: str | None = None


@dataclass
class Recorder:
    """What the load (and the scenario's own writes) did, in order of completion."""

    reads: list[Read] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.reads) + len(self.writes)


def item_names(count: int) -> list[str]:
    return [f"i{number}" for number in range(count)]


async def generate(url: str, plan: LoadPlan, recorder: Recorder, stop: asyncio.Event) -> None:
    """Run the readers and the writer until `stop` is set or `plan.max_requests` are done."""
    limits = httpx.Limits(max_connections=plan.readers + 2, max_keepalive_connections=0)
    # No keep-alive: each request is accepted by a live worker, none waits on a dead one.
    async with httpx.AsyncClient(base_url=url, timeout=_REQUEST_TIMEOUT, limits=limits) as client:
        items = item_names(plan.items)
        tasks = [_reader(client, items, plan, recorder, stop) for _ in range(plan.readers)]
        await asyncio.gather(_writer(client, items, plan, recorder, stop), *tasks)


def _running(plan: LoadPlan, recorder: Recorder, stop: asyncio.Event) -> bool:
    return not stop.is_set() and recorder.count < plan.max_requests


async def _reader(
    client: httpx.AsyncClient,
    items: list[str],
    plan: LoadPlan,
    recorder: Recorder,
    stop: asyncio.Event,
) -> None:
    while _running(plan, recorder, stop):
        recorder.reads.append(await read(client, random.choice(items), random.choice(ENDPOINTS)))


async def _writer(
    client: httpx.AsyncClient,
    items: list[str],
    plan: LoadPlan,
    recorder: Recorder,
    stop: asyncio.Event,
) -> None:
    while _running(plan, recorder, stop):
        recorder.writes.append(await write(client, random.choice(items)))
        await asyncio.sleep(plan.write_pause)  # the write rate, not a synchronisation


async def read(client: httpx.AsyncClient, item: str, endpoint: str) -> Read:
    start = time.monotonic()
    try:
        response = await client.get(f"/{endpoint}/{item}")
    except httpx.HTTPError as exc:
        return Read(item, endpoint, start, time.monotonic(), error=type(exc).__name__)
    end = time.monotonic()
    if response.status_code != 200:
        return Read(item, endpoint, start, end, error=f"HTTP {response.status_code}")
    body = response.json()
    return Read(item, endpoint, start, end, version=body["version"], fill=body["fill"])


async def write(client: httpx.AsyncClient, item: str) -> Write:
    start = time.monotonic()
    try:
        response = await client.post(f"/write/{item}")
    except httpx.HTTPError as exc:
        return Write(item, start, time.monotonic(), error=type(exc).__name__)
    end = time.monotonic()
    if response.status_code != 200:
        return Write(item, start, end, error=f"HTTP {response.status_code}")
    return Write(item, start, end, version=response.json()["version"])
