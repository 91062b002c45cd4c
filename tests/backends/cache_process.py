"""A cache in another OS process, driven line by line over stdin/stdout (JSON).

`python -m tests.backends.cache_process BACKEND REDIS_URL KEY_PREFIX` builds a service with
`create_cache` and answers one JSON line per command:

- {"op": "get", "key": k}                      -> {"value": v}
- {"op": "watch", "key": k, "until": v}       -> {"ms": elapsed, "polls": n} once get == v
  (get and watch take an optional "namespace")
- {"op": "fill", "key": k, "counter": c, "release": r}
      -> get_or_set_async(k) whose factory INCRs Redis key c, then waits until key r
         exists, and returns the counter value: {"value": v}
- {"op": "exit"}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import redis.asyncio as aioredis

from fastapi_cachekit import CacheService, create_cache

_WATCH_LIMIT = 10.0  # seconds before `watch` gives up (a failure, not a timing threshold)


async def handle(cache: CacheService, raw: aioredis.Redis, command: dict[str, Any]) -> Any:
    op = command["op"]
    if op == "get":
        return {"value": await cache.get(command["key"], command.get("namespace"))}
    if op == "watch":
        started, polls = time.perf_counter(), 0
        while time.perf_counter() - started < _WATCH_LIMIT:
            polls += 1
            if await cache.get(command["key"], command.get("namespace")) == command["until"]:
                return {"ms": (time.perf_counter() - started) * 1000, "polls": polls}
            await asyncio.sleep(0.001)
        return {"error": "timed out"}
    if op == "fill":

        async def factory() -> int:
            value = int(await raw.incr(command["counter"]))
            while not await raw.exists(command["release"]):  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.005)
            return value

        return {"value": await cache.get_or_set_async(command["key"], factory, ttl=60)}
    raise ValueError(op)


async def main(backend: str, url: str, prefix: str) -> None:
    cache = create_cache(backend=backend, redis_url=url, key_prefix=prefix)
    raw = aioredis.Redis.from_url(url)
    await cache.get("__warm_up__")  # connect and subscribe before saying we are ready
    print(json.dumps({"ready": True}), flush=True)
    while line := await asyncio.to_thread(sys.stdin.readline):
        command = json.loads(line)
        if command["op"] == "exit":
            break
        print(json.dumps(await handle(cache, raw, command)), flush=True)
    await cache.close()
    await raw.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
