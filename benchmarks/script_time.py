"""The longest single Lua script call of the Redis backend, under the largest fan-outs.

Redis runs one script at a time: while a script runs, every other client waits. This measures,
on a throwaway redis-server, how long each script call ran (Redis' own SLOWLOG timing, in
microseconds, so client and network time are left out; on a busy machine the worst case also
counts the time redis-server waited for a CPU) for the worst cases we know of:

    python -m benchmarks.script_time            # the full sizes (about a minute)
    python -m benchmarks.script_time --quick    # small sizes (a smoke run)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Awaitable, Callable

import redis

from fastapi_cachekit.backends.redis import RedisBackend

from .redis_server import redis_server, redis_server_missing

Case = Callable[[RedisBackend], Awaitable[object]]


def _cases(quick: bool) -> list[tuple[str, Case, Case]]:
    """(name, setup, measured operation) of each worst case."""
    wide, tags = (10, 200) if quick else (100, 2000)
    many = 2_000 if quick else 100_000

    async def wide_entries(backend: RedisBackend) -> None:
        labels = tuple(f"tag-{i}" for i in range(tags))
        for i in range(wide):
            await backend.set(f"wide:{i}", b"v" * 100, ttl=3600, namespace="w", tags=labels)

    async def many_entries(backend: RedisBackend) -> None:
        for first in range(0, many, 500):
            await asyncio.gather(
                *(
                    backend.set(f"k:{i}", b"v" * 100, ttl=3600, namespace="n", tags=("big",))
                    for i in range(first, first + 500)
                )
            )

    async def nothing(_backend: RedisBackend) -> None:
        return None

    wide_tags = [f"tag-{i}" for i in range(tags)]
    return [
        (
            f"set with {tags} tags",
            nothing,
            lambda b: b.set("one", b"v", ttl=60, namespace="w", tags=tuple(wide_tags)),
        ),
        (
            f"invalidate 1 tag of {wide} entries x {tags} tags",
            wide_entries,
            lambda b: b.invalidate_tags(["tag-0"]),
        ),
        (
            f"invalidate {tags} tags of {wide} entries x {tags} tags",
            wide_entries,
            lambda b: b.invalidate_tags(wide_tags),
        ),
        (f"invalidate 1 tag of {many} entries", many_entries, lambda b: b.invalidate_tags(["big"])),
        (f"clear {many} entries", many_entries, lambda b: b.clear()),
        (f"cleanup after {many} entries expired", many_entries, _expire_and_clean),
    ]


async def _expire_and_clean(backend: RedisBackend) -> None:
    clock = backend._clock  # the benchmark's own clock (see `_run`)
    assert isinstance(clock, _Clock)
    clock.now += 7200
    await backend.cleanup_expired()


class _Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _script_times(raw: redis.Redis) -> list[int]:
    """Microseconds of each EVALSHA since the last reset."""
    entries = raw.slowlog_get(-1)
    return [int(e["duration"]) for e in entries if e["command"].startswith(b"EVALSHA")]


async def _run(url: str, quick: bool, only: str) -> list[tuple[str, int, float, float, int]]:
    raw = redis.Redis.from_url(url)
    raw.config_set("slowlog-log-slower-than", 0)
    raw.config_set("slowlog-max-len", 1_000_000)
    rows = []
    for name, setup, operation in _cases(quick):
        if only not in name:
            continue
        raw.flushall()
        backend = RedisBackend(url, clock=_Clock(), socket_timeout=30)
        try:
            await setup(backend)
            raw.slowlog_reset()
            await operation(backend)
            times = _script_times(raw)
        finally:
            await backend.close()
        p99 = (
            statistics.quantiles(times, n=100, method="inclusive")[98]
            if len(times) > 1
            else times[0]
        )
        rows.append((name, len(times), statistics.median(times), p99, max(times)))
    raw.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", default="", help="the cases whose name contains this")
    options = parser.parse_args()
    missing = redis_server_missing()
    if missing:
        raise SystemExit(missing)
    with redis_server() as server:
        rows = asyncio.run(_run(server.url, options.quick, options.only))
    print("| case | script calls | median µs | p99 µs | worst µs |\n|---|--:|--:|--:|--:|")
    for name, calls, median, p99, worst in rows:
        print(f"| {name} | {calls} | {median:.0f} | {p99:.0f} | {worst} |")
    print(f"\nworst single script call: {max(row[4] for row in rows)} µs")


if __name__ == "__main__":
    main()
