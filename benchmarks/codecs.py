"""Bytes stored and round-trip time of each codec and compression for a 100 KB JSON-like
value, on a throwaway redis-server (free port, nothing on disk).

A round trip is `set` then `get` through a CacheService on Redis, the value decoded; the
codecs take turns round by round, so a busy machine slows them alike. The table gives the
median and the 95th percentile over the rounds, and the median of encode + decode alone.

    .venv/bin/python -m benchmarks.codecs [--rounds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import orjson

from fastapi_cachekit import CacheService, create_cache
from fastapi_cachekit.serialization import make_codec

from .redis_server import redis_server

_TARGET_BYTES = 100_000
_KEY = "pickle-benchmark-signing-key"
_SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("json", {"serializer": "json"}),
    ("json + zlib", {"serializer": "json", "compression": "zlib"}),
    ("msgpack", {"serializer": "msgpack"}),
    ("msgpack + zlib", {"serializer": "msgpack", "compression": "zlib"}),
    ("pickle", {"serializer": "pickle", "signing_key": _KEY}),
    ("pickle + zlib", {"serializer": "pickle", "signing_key": _KEY, "compression": "zlib"}),
]


def sample_value() -> list[dict[str, Any]]:
    """Product rows like an API's list response, about 100 KB as JSON."""
    rows: list[dict[str, Any]] = []
    while len(orjson.dumps(rows)) < _TARGET_BYTES:
        n = len(rows)
        rows.append(
            {
                "id": n,
                "sku": f"SKU-{n * 7919 % 100_000:05d}",
                "name": f"Product {n}",
                "description": f"A sturdy item number {n}, in stock at {n % 17} stores.",
                "price": round(4.99 + (n * 37 % 1000) / 10, 2),
                "in_stock": n % 3 != 0,
                "tags": ["catalog", f"category-{n % 12}", f"brand-{n % 40}"],
                "rating": {"average": (n * 13 % 50) / 10, "count": n * 11 % 900},
            }
        )
    return rows


async def _round_trip(cache: CacheService, value: Any) -> float:
    started = time.perf_counter()
    await cache.set("value", value)
    if await cache.get("value") is None:
        raise RuntimeError("the value did not come back")
    return time.perf_counter() - started


def _codec_time(settings: dict[str, Any], value: Any, rounds: int) -> float:
    codec = make_codec(
        settings["serializer"],
        settings.get("signing_key"),
        compression=settings.get("compression", "none"),
    )
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        codec.decode(codec.encode(value))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def measure(url: str, rounds: int) -> list[str]:
    value = sample_value()
    caches = [
        create_cache(backend="redis", redis_url=url, key_prefix=f"codec{i}", **settings)
        for i, (_, settings) in enumerate(_SETTINGS)
    ]
    times: list[list[float]] = [[] for _ in caches]
    try:
        for _ in range(rounds):
            for cache, series in zip(caches, times, strict=True):
                series.append(await _round_trip(cache, value))
        sizes = [len(await cache.get_raw("value", count=False) or b"") for cache in caches]
    finally:
        for cache in caches:
            await cache.clear_all()
            await cache.close()
    plain = len(orjson.dumps(value))
    rows = []
    for (name, settings), size, series in zip(_SETTINGS, sizes, times, strict=True):
        median = statistics.median(series) * 1000
        p95 = statistics.quantiles(series, n=20)[-1] * 1000
        codec = _codec_time(settings, value, rounds) * 1000
        rows.append(
            f"| {name} | {size:,} | {size / plain:.0%} | {median:.2f} | {p95:.2f} | {codec:.2f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="round trips per codec")
    args = parser.parse_args()
    with redis_server() as server:
        rows = asyncio.run(measure(server.url, args.rounds))
    print(f"A {len(orjson.dumps(sample_value())):,}-byte JSON value, Redis on loopback")
    print(
        "| codec | bytes stored | of JSON | round trip median (ms) | p95 (ms) "
        "| encode + decode median (ms) |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
