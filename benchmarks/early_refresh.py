"""What callers of a hot key wait for at its expiry, with and without early refresh.

One key, TTL 2 s, whose factory takes 50 ms. Every 200 ms a wave of 200 concurrent callers
calls `get_or_set_async` on it, for 8 s: the key expires about four times. Each call's latency
is measured from its own start. Without early refresh the waves that arrive while the expired
key is being recomputed all wait for the factory (single flight: one run, 200 waiters); with
`refresh_ahead=0.5` the first hit of the last 500 ms starts one background refresh, and every
caller gets the stored value (the window is wide beside the 200 ms between waves: on a busy
machine the loop may be late by a wave or two). Memory, and Redis on a throwaway redis-server
(free loopback port).

    python -m benchmarks.early_refresh            # the full run (~40 s)
    python -m benchmarks.early_refresh --quick    # 3 s of waves per row (~15 s)
    python -m benchmarks.early_refresh --factory-ms 200   # a slower factory
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.base import CacheBackend
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend

from .redis_server import redis_server, redis_server_missing

FACTORY_SECONDS = 0.05
TTL = 2.0
REFRESH_AHEAD = 0.5
CALLERS = 200
WAVE_EVERY = 0.2


@dataclass(frozen=True)
class Result:
    backend: str
    refresh: bool
    waves: list[list[float]]  # each wave's latencies, in seconds
    factory_runs: int
    misses: int
    faults: int

    @property
    def mode(self) -> str:
        return f"refresh_ahead={REFRESH_AHEAD:g}" if self.refresh else "off"

    def row(self) -> str:
        ms = sorted(x * 1000 for wave in self.waves for x in wave)
        p99 = statistics.quantiles(ms, n=100, method="inclusive")[98]
        worst_wave = max(statistics.fmean(wave) for wave in self.waves) * 1000
        return (
            f"| {self.backend} | {self.mode} "
            f"| {len(ms)} | {self.factory_runs} | {self.misses} | {self.faults} "
            f"| {statistics.fmean(ms):.2f} | {statistics.median(ms):.2f} | {p99:.2f} "
            f"| {ms[-1]:.2f} | {worst_wave:.2f} |"
        )


HEADER = (
    "| backend | early refresh | calls | factory runs | misses (waited for the factory) | faults "
    "| mean ms | p50 ms | p99 ms | max ms | slowest wave, mean ms |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


async def _hot_key(
    backend: CacheBackend,
    name: str,
    refresh: bool,
    duration: float,
    factory_seconds: float = FACTORY_SECONDS,
) -> Result:
    cache = CacheService(backend, stats_flush_interval=3600)
    runs = 0

    async def factory() -> dict[str, int]:
        nonlocal runs
        runs += 1
        await asyncio.sleep(factory_seconds)
        return {"version": runs}

    ahead = REFRESH_AHEAD if refresh else None

    async def call() -> float:
        start = time.perf_counter()
        await cache.get_or_set_async("hot", factory, ttl=TTL, refresh_ahead=ahead)
        return time.perf_counter() - start

    async def wave() -> list[float]:
        return await asyncio.gather(*(call() for _ in range(CALLERS)))

    await cache.get_or_set_async("hot", factory, ttl=TTL, refresh_ahead=ahead)  # warm
    runs, began = 0, time.perf_counter()
    waves = []
    for number in range(round(duration / WAVE_EVERY)):
        # Waves start on a fixed schedule: a wave held up by a fill does not delay the next.
        await asyncio.sleep(max(0.0, began + number * WAVE_EVERY - time.perf_counter()))
        waves.append(asyncio.create_task(wave()))
    latencies = await asyncio.gather(*waves)
    stats = await cache.get_stats()
    await cache.clear_all()
    await cache.close()
    # The warm-up's miss aside; a fault (Redis too busy to answer in time) is a miss too.
    return Result(name, refresh, latencies, runs, stats.total_misses - 1, stats.errors)


async def _both(
    make: Callable[[], CacheBackend], name: str, duration: float, factory_seconds: float
) -> list[str]:
    """The rows without and with early refresh, each on a fresh backend."""
    return [
        (await _hot_key(make(), name, refresh, duration, factory_seconds)).row()
        for refresh in (False, True)
    ]


async def _run(backends: list[str], duration: float, factory_seconds: float) -> list[str]:
    rows = []
    if "memory" in backends:
        rows += await _both(MemoryBackend, "memory", duration, factory_seconds)
    if "redis" in backends:
        missing = redis_server_missing()
        if missing:
            rows.append(f"| redis | skipped: {missing} |")
        else:
            with redis_server() as server:
                prefixes = itertools.count()  # a row's counters must not include another's
                rows += await _both(
                    lambda: RedisBackend(server.url, key_prefix=f"early{next(prefixes)}"),
                    "redis",
                    duration,
                    factory_seconds,
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s of waves per row instead of 8 s")
    parser.add_argument("--backend", nargs="+", choices=["memory", "redis"], default=None)
    parser.add_argument(
        "--factory-ms", type=float, default=FACTORY_SECONDS * 1000, help="the factory's duration"
    )
    args = parser.parse_args(argv)
    duration = 3.0 if args.quick else 8.0
    factory_seconds = args.factory_ms / 1000
    rows = asyncio.run(_run(args.backend or ["memory", "redis"], duration, factory_seconds))
    print(
        f"A hot key: TTL {TTL:g} s, factory {args.factory_ms:g} ms, {CALLERS} callers "
        f"every {WAVE_EVERY * 1000:.0f} ms for {duration:g} s.\n"
    )
    print(HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
