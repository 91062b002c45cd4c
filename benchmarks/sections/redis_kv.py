"""Section `redis`: get-hit and set on a redis-server this run starts, sequential and with 50
concurrent tasks; set with 2 tags; invalidating a tag of 100k entries.

Floor: raw redis.asyncio GET/SET of pre-encoded bytes on the same server. Each store works on
its own keys. The tag invalidation reports the server's worst command latency while it ran
(SLOWLOG with every command logged, and LATENCY LATEST), i.e. how long Redis was blocked.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis

from ..harness import Case, Row, error_row, info_row, measure_plan, unavailable_row
from ..peers import TTL_SECONDS, FastAPICache2Values
from ..redis_server import redis_server
from ..workload import Store, WorkingSet, get_case, prefill, set_case
from .common import Factory, open_stores, placeholder
from .redis_common import backend_missing, raw_store, skipped_rows

__all__ = ["run"]

CONCURRENCY = 50
TAGS = ("products", "featured")
FLOOR = "floor: raw redis-py"
SERVICE = "cachekit CacheService"
BACKEND = "cachekit RedisBackend (bytes)"
TAGGED = "cachekit CacheService, 2 tags"
# The tag invalidation logs server commands slower than this (µs), at most _SLOWLOG_LEN of them.
_SLOWLOG_US = 100
_SLOWLOG_LEN = 10_000


@dataclass(frozen=True)
class Params:
    ops: int
    repeats: int
    size: int
    tag_entries: int


FULL = Params(ops=3000, repeats=5, size=1000, tag_entries=100_000)
QUICK = Params(ops=40, repeats=2, size=50, tag_entries=300)


def _cachekit_service(url: str, prefix: str) -> Any:
    from fastapi_cachekit import create_cache

    return create_cache(
        backend="redis",
        redis_url=url,
        key_prefix=prefix,
        default_ttl_seconds=TTL_SECONDS,
        enable_stats=True,
        serializer="json",
    )


async def _service_store(url: str) -> Store:
    service = _cachekit_service(url, "bench-svc")
    return Store(service.get, service.set, service.close, note="defaults: TTL, stats, JSON")


async def _backend_store(url: str) -> Store:
    from fastapi_cachekit.backends.redis import RedisBackend

    backend = RedisBackend(url, key_prefix="bench-be")
    set_ = functools.partial(backend.set, ttl=float(TTL_SECONDS), namespace=None, tags=())
    return Store(backend.get, set_, backend.close, raw=True, note="the backend alone, bytes")


async def _tagged_store(url: str) -> Store:
    service = _cachekit_service(url, "bench-tag")
    tagged_set = functools.partial(service.set, tags=TAGS)
    return Store(service.get, tagged_set, service.close, note=f"tags={list(TAGS)}")


async def _cashews_store(url: str) -> Store:
    from cashews import Cache

    cache = Cache()
    cache.setup(url)
    return Store(cache.get, functools.partial(cache.set, expire=TTL_SECONDS), cache.close)


async def _aiocache_store(url: str) -> Store:
    from aiocache import RedisCache  # type: ignore[import-untyped]

    address = urlsplit(url)
    cache = RedisCache(endpoint=address.hostname, port=address.port, ttl=TTL_SECONDS)
    return Store(cache.get, cache.set, cache.close, note="its default JsonSerializer")


async def _fastapi_cache2_store(url: str) -> Store:
    from fastapi_cache.backends.redis import RedisBackend

    client = aioredis.Redis.from_url(url)
    cache = FastAPICache2Values(RedisBackend(client))
    return Store(cache.get, cache.set, client.aclose, note="with its JsonCoder")


_STORES: list[tuple[str, Callable[[str], Awaitable[Store]]]] = [
    (FLOOR, raw_store),
    (SERVICE, _service_store),
    (BACKEND, _backend_store),
    ("cashews redis://", _cashews_store),
    ("aiocache RedisCache", _aiocache_store),
    ("fastapi-cache2 RedisBackend", _fastapi_cache2_store),
    (TAGGED, _tagged_store),  # measured in the "set ... with 2 tags" rows only
]
_CACHEKIT = (SERVICE, BACKEND, TAGGED)


def _factories(url: str, cachekit_reason: str | None) -> list[tuple[str, Factory]]:
    return [
        (name, functools.partial(factory, url))
        for name, factory in _STORES
        if cachekit_reason is None or name not in _CACHEKIT
    ]


@dataclass
class _Planner:
    """Lays out the rows: every store for each (op, concurrency), in table order."""

    stores: dict[str, Store]
    unavailable: dict[str, Row]
    sets: dict[str, WorkingSet]
    ops: int

    def kv(self, op: str, tasks: int, names: list[str]) -> list[Case | Row]:
        label = _label(op, tasks)
        return [
            self._item(op, tasks, f"{label}: {name}", name, f"{label}: {FLOOR}") for name in names
        ]

    def tagged(self, tasks: int) -> Case | Row:
        label = _label("set", tasks)
        name = f"{label} with 2 tags: {SERVICE}"
        return self._item("set", tasks, name, TAGGED, f"{label}: {FLOOR}")

    def _item(self, op: str, tasks: int, row: str, store: str, floor: str) -> Case | Row:
        if store in self.unavailable:
            return placeholder(self.unavailable[store], row)
        baseline = None if store == FLOOR else floor
        args = (row, self.stores[store], self.sets[store], self.ops)
        if op == "set":
            return set_case(*args, baseline=baseline, tasks=tasks)
        return get_case(*args, baseline=baseline, tasks=tasks)


def _label(op: str, tasks: int) -> str:
    return f"{op} {'seq' if tasks == 1 else f'x{tasks}'}"


async def _kv_rows(url: str, params: Params, cachekit_reason: str | None) -> list[Row]:
    names = [name for name, _ in _STORES if name != TAGGED]
    async with open_stores(_factories(url, cachekit_reason)) as (stores, unavailable):
        if cachekit_reason is not None:
            unavailable.update({name: unavailable_row(name, cachekit_reason) for name in _CACHEKIT})
        sets = {name: WorkingSet(params.size, prefix=f"s{i}") for i, name in enumerate(stores)}
        for name, store in stores.items():
            await prefill(store, sets[name], tasks=CONCURRENCY)
        planner = _Planner(stores, unavailable, sets, params.ops)
        plan: list[Case | Row] = []
        for op in ("get-hit", "set"):
            for tasks in (1, CONCURRENCY):
                plan += planner.kv(op, tasks, names)
        plan += [planner.tagged(1), planner.tagged(CONCURRENCY)]
        return await measure_plan(plan, params.repeats)


async def _worst_latency(admin: aioredis.Redis) -> tuple[float, str, int, float]:
    """(worst command µs, its name, commands logged, LATENCY LATEST max ms) since the reset."""
    # LATENCY LATEST first: a long SLOWLOG GET is itself slow enough to be an event.
    events = await admin.latency_latest()
    latest_max = max((float(event[3]) for event in events), default=0.0)
    entries = await admin.slowlog_get(_SLOWLOG_LEN)
    worst = max(entries, key=lambda entry: entry["duration"], default=None)
    name = "" if worst is None else _command_name(worst["command"])
    return (0.0 if worst is None else float(worst["duration"])), name, len(entries), latest_max


def _command_name(command: bytes | str) -> str:
    text = command.decode(errors="replace") if isinstance(command, bytes) else command
    return " ".join(text.split()[:1])


async def _watch(admin: aioredis.Redis) -> None:
    """From now on, log commands slower than _SLOWLOG_US (SLOWLOG) and events over 1 ms."""
    await admin.config_set("latency-monitor-threshold", 1)
    await admin.config_set("slowlog-log-slower-than", _SLOWLOG_US)
    await admin.config_set("slowlog-max-len", _SLOWLOG_LEN)
    await admin.latency_reset()
    await admin.slowlog_reset()


async def _unwatch(admin: aioredis.Redis) -> None:
    await admin.config_set("slowlog-log-slower-than", 10_000)
    await admin.config_set("latency-monitor-threshold", 0)
    await admin.slowlog_reset()


async def _fill_tag(service: Any, entries: int) -> None:
    ws = WorkingSet(entries, prefix="big")
    tagged = Store(service.get, functools.partial(service.set, tags=["big", "catalog"]))
    await prefill(tagged, ws, tasks=CONCURRENCY)


async def _tag_invalidation_row(url: str, params: Params) -> Row:
    name = f"invalidate a tag of {params.tag_entries:,} entries: {SERVICE}"
    try:
        return await _tag_invalidation(url, params, name)
    except Exception as exc:  # keep the rows measured so far; report this one as failed
        traceback.print_exc()
        return error_row(name, exc)


async def _tag_invalidation(url: str, params: Params, name: str) -> Row:
    service = _cachekit_service(url, "bench-inv")
    admin = aioredis.Redis.from_url(url, socket_timeout=60)
    try:
        await _fill_tag(service, params.tag_entries)
        await _watch(admin)
        start = time.perf_counter()
        removed = await service.invalidate_tags(["big"])
        elapsed = time.perf_counter() - start
        worst_us, command, logged, latest_ms = await _worst_latency(admin)
        await _unwatch(admin)
    finally:
        await service.close()
        await admin.aclose()
    return info_row(
        name,
        f"{elapsed * 1000:,.1f} ms, removed {removed:,}; worst server command "
        + (f"{worst_us / 1000:.2f} ms ({command})" if logged else f"< {_SLOWLOG_US} µs")
        + f", {logged} commands over {_SLOWLOG_US} µs; LATENCY LATEST max {latest_ms:.0f} ms",
        seconds=elapsed,
        removed=removed,
        worst_command_us=worst_us,
        worst_command=command,
        commands_logged=logged,
        latency_latest_max_ms=latest_ms,
    )


async def run(quick: bool) -> list[Row]:
    skipped = skipped_rows("redis")
    if skipped is not None:
        return skipped
    params = QUICK if quick else FULL
    cachekit_reason = backend_missing("redis")
    with redis_server() as server:
        rows = await _kv_rows(server.url, params, cachekit_reason)
        if cachekit_reason is None:
            rows.append(await _tag_invalidation_row(server.url, params))
        else:
            rows.append(unavailable_row("invalidate a tag of 100k entries", cachekit_reason))
    return rows
