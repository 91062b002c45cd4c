"""How long a hybrid process can serve an entry another process has invalidated while Redis is
stalled (SIGSTOP), measured on a throwaway redis-server.

Process A invalidates a tag just after the stall begins: the call fails fast and is queued.
Process B, which holds the entry in L1, reads it every 10 ms. The run reports, for each stall
length, B's stale reads (count, and the last one's time after A's call returned) and how long
after SIGCONT A's queued invalidation was replayed, with A making no call of its own.

    .venv/bin/python -m benchmarks.hybrid_staleness
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.errors import BackendError

from .redis_server import redis_server

_STALLS = (1.5, 3.0, 6.0)
_READ_EVERY = 0.01
_SETTLE = 8.0  # seconds after SIGCONT that B keeps reading
_HEADER = (
    "| stall | stale reads in B | last stale read after the call | replayed after SIGCONT |\n"
    "|---|---|---|---|"
)


async def _one_stall(url: str, pid: int, stall: float) -> str:
    a = HybridBackend(RedisBackend(url, key_prefix=f"stale{stall}"))
    b = HybridBackend(RedisBackend(url, key_prefix=f"stale{stall}"))
    await a.set("k", b"old", ttl=None, namespace=None, tags=("t",))
    assert await b.get("k") == b"old"  # in B's L1
    os.kill(pid, signal.SIGSTOP)
    with contextlib.suppress(BackendError):  # it fails fast and is queued
        await a.invalidate_tags(["t"])
    acknowledged = time.perf_counter()
    stale, last_stale, replayed = 0, 0.0, None
    resumed = acknowledged + stall
    continued = False
    while time.perf_counter() < resumed + _SETTLE:
        now = time.perf_counter()
        if not continued and now >= resumed:
            os.kill(pid, signal.SIGCONT)
            continued = True
        if continued and replayed is None and not a.pending_invalidations:
            replayed = now - resumed
        try:
            value = await b.get("k")
        except BackendError:
            value = None
        if value is not None:
            stale += 1
            last_stale = now - acknowledged
        await asyncio.sleep(_READ_EVERY)
    await a.close()
    await b.close()
    replay = "never" if replayed is None else f"{replayed:.2f} s"
    return f"| {stall:.1f} s | {stale} | {last_stale:.2f} s | {replay} |"


async def main() -> None:
    with redis_server() as server:
        print(_HEADER)
        for stall in _STALLS:
            print(await _one_stall(server.url, server.process.pid, stall), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
