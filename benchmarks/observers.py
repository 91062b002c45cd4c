"""What an observer costs a memory get-hit: none, Prometheus, OpenTelemetry (API only, and
with the SDK's providers, spans and metrics together or apart).

    python -m benchmarks.observers                # 100,000 hits per row, best of 5
    python -m benchmarks.observers --calls 10000  # a quicker look

Each row is the best of `--repeats` timed loops of `await cache.get(...)` on one hot key, so
it is the cost of the read plus the events it tells, without exporting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from fastapi_cachekit import CacheService, MemoryBackend
from fastapi_cachekit.events import CacheObserver
from fastapi_cachekit.observers.otel import OpenTelemetryObserver
from fastapi_cachekit.observers.prometheus import PrometheusObserver


def observers() -> list[tuple[str, CacheObserver | None]]:
    def sdk(**options: bool) -> OpenTelemetryObserver:
        return OpenTelemetryObserver(TracerProvider(), MeterProvider(), **options)

    return [
        ("no observer", None),
        ("PrometheusObserver", PrometheusObserver(CollectorRegistry())),
        ("OpenTelemetryObserver, API only (no SDK)", OpenTelemetryObserver()),
        ("OpenTelemetryObserver, SDK: spans and metrics", sdk()),
        ("OpenTelemetryObserver, SDK: metrics only", sdk(spans=False)),
        ("OpenTelemetryObserver, SDK: spans only", sdk(metrics=False)),
    ]


async def time_hits(observer: CacheObserver | None, calls: int, repeats: int) -> float:
    """Nanoseconds per hit, the best of `repeats` loops."""
    async with CacheService(MemoryBackend(), observers=observer) as cache:
        await cache.set("hot", {"id": 1}, namespace="bench")
        get = cache.get
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(calls):
                await get("hot", "bench")
            best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e9


async def run(calls: int, repeats: int) -> list[tuple[str, float]]:
    return [(name, await time_hits(obs, calls, repeats)) for name, obs in observers()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rows = asyncio.run(run(args.calls, args.repeats))
    baseline = rows[0][1]
    print(f"{'memory get-hit':48} {'ns/hit':>9} {'x':>6}")
    for name, nanoseconds in rows:
        print(f"{name:48} {nanoseconds:9.0f} {nanoseconds / baseline:6.1f}")


if __name__ == "__main__":
    main()
