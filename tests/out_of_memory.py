"""A cache call that runs out of memory, in another OS process (the limit is per process).

`python -m tests.out_of_memory BACKEND REDIS_URL CASE` builds a service, makes a 200 MB
value, caps the process's address space 100 MB above what it uses (RLIMIT_AS), so that
storing the value (a copy at least as big) fails with a real MemoryError, runs CASE and prints
one JSON line: what the call returned or raised, the service's error count, and whether the
cache still answers afterwards.

CASE: "set_raw" (the bytes, as they are: fails while storing), "set", "get_or_set" and
"set_many" (with the signed pickle codec, whose encoding fails first; orjson cannot be tested
so: it crashes the process when an allocation fails, instead of raising). For "set_many" the
answer also holds the `not_stored` events told (their key and reason).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
from typing import Any

from fastapi_cachekit import CacheEvent, CacheService, MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.serialization import SignedPickleCodec

_SIZE = 200 << 20
_HEADROOM = 100 << 20


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


class _Told:
    def __init__(self, told: list[CacheEvent]) -> None:
        self.event = told.append


async def run(backend_kind: str, url: str, case: str) -> dict[str, Any]:
    backend = MemoryBackend() if backend_kind == "memory" else RedisBackend(url, key_prefix="oom")
    told: list[CacheEvent] = []
    cache = CacheService(backend, codec=SignedPickleCodec(b"k" * 32), observers=_Told(told))
    await cache.set("warm", 1)
    value = "x" * _SIZE
    data = value.encode()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + _HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        if case == "set_raw":
            outcome: Any = await cache.set_raw("big", data)
        elif case == "set":
            outcome = await cache.set("big", value)
        elif case == "set_many":
            outcome = await cache.set_many({"small": 1, "big": value})
        else:
            outcome = len(await cache.get_or_set_async("big", lambda: value))
        answer: dict[str, Any] = {"returned": outcome}
    except BaseException as exc:  # the report is the point: whatever escaped, say so
        answer = {"raised": type(exc).__name__}
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    answer["errors"] = (await cache.get_stats()).errors
    answer["warm"] = await cache.get("warm")
    answer["stored"] = await cache.exists("big")
    if case == "set_many":
        answer["told"] = [[e.key, e.reason] for e in told if e.kind == "not_stored"]
    await cache.clear_all()
    await cache.close()
    return answer


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(*sys.argv[1:4]))), flush=True)
