"""Section `batch`: get_many / set_many of 50 keys on a redis-server this run starts.

One op is one batch of 50 keys, so a row's ratio is also its ratio per key. Floors: a raw
redis-py pipeline (transaction=False) of 50 GETs, and of 50 SETs with EX, of pre-encoded
bytes. Beside them: the kit's service and bare backend, the service's single-key calls one
after the other (what a batch saves), a write with 2 tags, and a raw pipeline of 50 calls of
the kit's per-key SET script (`scripts.SET`, the EVALSHA `set` sends): what keeping indexes,
entry lists and fill checks key by key costs Redis, apart from the kit's Python. `set_many`
sends one SET_MANY call instead (`batch_scripts`: the work the entries share done once), so
that row is a reference for what the batch script saves. Its client has the kit's default
socket timeout (`redis_socket_timeout_seconds`), which redis-py applies to every reply it
reads, as the kit's client does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..harness import Case, Row, compare, measure_plan, unavailable_row
from ..peers import TTL_SECONDS
from ..redis_server import redis_server
from ..workload import WorkingSet
from .redis_common import backend_missing, skipped_rows

__all__ = ["BATCH", "run"]

BATCH = 50
GET_FLOOR = f"get {BATCH} keys: floor: raw redis-py pipeline of GET"
GET_SERVICE = f"get {BATCH} keys: cachekit CacheService.get_many"
GET_BACKEND = f"get {BATCH} keys: cachekit RedisBackend.get_many (bytes)"
GET_ONE_BY_ONE = f"get {BATCH} keys: cachekit CacheService.get, one by one"
SET_FLOOR = f"set {BATCH} keys: floor: raw redis-py pipeline of SET EX"
SET_SERVICE = f"set {BATCH} keys: cachekit CacheService.set_many"
SET_BACKEND = f"set {BATCH} keys: cachekit RedisBackend.set_many (bytes)"
SET_TAGGED = f"set {BATCH} keys with 2 tags: cachekit CacheService.set_many"
SET_ONE_BY_ONE = f"set {BATCH} keys: cachekit CacheService.set, one by one"
SET_SCRIPT = f"set {BATCH} keys: raw redis-py pipeline of cachekit's SET script"  # see above
TAGS = ("products", "featured")


@dataclass(frozen=True)
class Params:
    batches: int
    repeats: int
    size: int


FULL = Params(batches=300, repeats=5, size=1000)
QUICK = Params(batches=4, repeats=2, size=100)

Op = Callable[[int], Awaitable[Any]]


def _case(name: str, op: Op, count: int, params: Params, baseline: str | None) -> Case:
    """`batches` calls of `op(i)`, i cycling over the working set's `count` batches."""

    async def run(n: int) -> None:
        for i in range(n):
            await op(i % count)

    return Case(name, run, params.batches, baseline, warmup=min(params.batches, 50))


class _Batches:
    """The working set cut into batches of BATCH keys, in every form the rows need."""

    def __init__(self, ws: WorkingSet) -> None:
        spans = range(0, ws.size - BATCH + 1, BATCH)
        self.keys = [ws.keys[i : i + BATCH] for i in spans]
        self.values = [
            dict(zip(k, ws.values[i : i + BATCH], strict=True))
            for k, i in zip(self.keys, spans, strict=True)
        ]
        self.encoded = [
            list(zip(k, ws.encoded[i : i + BATCH], strict=True))
            for k, i in zip(self.keys, spans, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.keys)


def _raw_ops(client: aioredis.Redis, b: _Batches) -> tuple[Op, Op]:
    async def get(i: int) -> Any:
        pipe = client.pipeline(transaction=False)
        for key in b.keys[i]:
            pipe.get(key)
        return await pipe.execute()

    async def put(i: int) -> Any:
        pipe = client.pipeline(transaction=False)
        for key, data in b.encoded[i]:
            pipe.set(key, data, ex=TTL_SECONDS)
        return await pipe.execute()

    return get, put


def _script_op(client: aioredis.Redis, backend: Any, b: _Batches) -> Op:
    """A raw pipeline of the SET script calls 50 `set`s make (arguments built beforehand)."""
    from fastapi_cachekit.backends.redis import scripts
    from fastapi_cachekit.backends.redis.layout import expiry, pack_envelope

    sha = backend.redis.sha(scripts.SET).decode()
    now = time.time()
    expires_ms, px = expiry(now, TTL_SECONDS)
    shard = backend.layout.shards[0]

    def call(key: str, data: bytes) -> tuple[list[str], list[Any]]:
        envelope = pack_envelope(data, now * 1000, expires_ms, None, ())
        return scripts.set_call(shard, key, envelope, px, b"", [])

    calls = [[call(key, data) for key, data in batch] for batch in b.encoded]

    async def put(i: int) -> Any:
        pipe = client.pipeline(transaction=False)
        for keys, args in calls[i]:
            pipe.evalsha(sha, len(keys), *keys, *args)
        return await pipe.execute()

    return put


async def _rows(url: str, params: Params) -> list[Row]:
    from fastapi_cachekit import CacheSettings, create_cache
    from fastapi_cachekit.backends.redis import RedisBackend, scripts

    b = {name: _Batches(WorkingSet(params.size, prefix=name)) for name in ("raw", "svc", "be")}
    client = aioredis.Redis.from_url(url)
    service: Any = create_cache(
        backend="redis",
        redis_url=url,
        key_prefix="bench-batch",
        default_ttl_seconds=TTL_SECONDS,
        enable_stats=True,
        serializer="json",
    )
    backend = RedisBackend(url, key_prefix="bench-batch-be")
    timeout = CacheSettings.model_fields["redis_socket_timeout_seconds"].default
    timed_client = aioredis.Redis.from_url(url, socket_timeout=timeout)
    try:
        await client.script_load(scripts.SET)
        raw_get, raw_set = _raw_ops(client, b["raw"])
        svc, be = b["svc"], b["be"]
        bytes_only: dict[str, Any] = {"ttl": float(TTL_SECONDS), "namespace": None, "tags": ()}

        async def one_by_one_get(i: int) -> None:
            for key in svc.keys[i]:
                await service.get(key)

        async def one_by_one_set(i: int) -> None:
            for key, value in svc.values[i].items():
                await service.set(key, value)

        for i in range(len(svc)):  # every key stored, so that the reads hit
            await raw_set(i)
            await service.set_many(svc.values[i])
            await backend.set_many(be.encoded[i], **bytes_only)
        cases = [
            (GET_FLOOR, raw_get, None),
            (GET_SERVICE, lambda i: service.get_many(svc.keys[i]), GET_FLOOR),
            (GET_BACKEND, lambda i: backend.get_many(be.keys[i]), GET_FLOOR),
            (GET_ONE_BY_ONE, one_by_one_get, GET_FLOOR),
            (SET_FLOOR, raw_set, None),
            (SET_SERVICE, lambda i: service.set_many(svc.values[i]), SET_FLOOR),
            (SET_BACKEND, lambda i: backend.set_many(be.encoded[i], **bytes_only), SET_FLOOR),
            (SET_TAGGED, lambda i: service.set_many(svc.values[i], tags=TAGS), SET_FLOOR),
            (SET_ONE_BY_ONE, one_by_one_set, SET_FLOOR),
            (SET_SCRIPT, _script_op(timed_client, backend, b["raw"]), SET_FLOOR),
        ]
        plan: list[Case | Row] = [
            _case(name, op, len(svc), params, baseline) for name, op, baseline in cases
        ]
        rows = await measure_plan(plan, params.repeats)
        for row in (SET_SERVICE, SET_BACKEND, SET_TAGGED):
            compare(rows, row, SET_SCRIPT)
        return rows
    finally:
        await service.close()
        await backend.close()
        await client.aclose()
        await timed_client.aclose()


async def run(quick: bool) -> list[Row]:
    skipped = skipped_rows("batch")
    if skipped is not None:
        return skipped
    reason = backend_missing("redis")
    if reason is not None:
        return [unavailable_row(name, reason) for name in (GET_SERVICE, SET_SERVICE)]
    params = QUICK if quick else FULL
    with redis_server() as server:
        return await _rows(server.url, params)
