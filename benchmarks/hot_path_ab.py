"""A/B of the two hot paths against another checkout: a memory get-hit and a CacheMiddleware
hit (a direct ASGI call), plus this checkout with a no-op observer.

    python -m benchmarks.hot_path_ab /path/to/other/checkout [--rounds 40]

Both packages are copied side by side under other names and measured in one process, in
interleaved rounds, by the thread's CPU time (not the wall clock): on a machine shared with
other work, time spent descheduled is not counted, so a few percent stay visible. Each figure
is the best round. Variants of one package never share a process with the observed variant
(its calls would make the unobserved one's call sites polymorphic).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

HERE = Path(__file__).resolve().parent.parent
GETS, REQUESTS = 20_000, 2_000
SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/item",
    "raw_path": b"/item",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"bench.local"), (b"accept", b"*/*")],
    "server": ("bench.local", 80),
    "client": ("127.0.0.1", 5),
}


class NoOpObserver:
    def event(self, event: object) -> None:
        pass


def build(package: str, observed: bool) -> tuple[Any, FastAPI]:
    kit = importlib.import_module(package)
    middleware = importlib.import_module(package + ".fastapi.middleware").CacheMiddleware
    cache = kit.create_cache(backend="memory", default_ttl_seconds=3600, serializer="json")
    if observed:
        cache.add_observer(NoOpObserver())
    app = FastAPI()

    @app.get("/item")
    async def item() -> dict[str, object]:
        return {"id": 1, "name": "x"}

    app.add_middleware(middleware, ttl=3600, cache=cache)
    return cache, app


async def measure(variants: dict[str, tuple[str, bool]], rounds: int) -> dict[str, float]:
    built = {name: build(*spec) for name, spec in variants.items()}
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    for cache, app in built.values():
        await cache.set("k", {"id": 1, "name": "x"})
        for _ in range(2):
            sent.clear()
            await app(dict(SCOPE), receive, send)
    best = {f"{probe} {name}": float("inf") for name in built for probe in ("get-hit", "http-hit")}
    for _ in range(rounds):
        for name, (cache, app) in built.items():
            get, started = cache.get, time.thread_time()
            for _ in range(GETS):
                await get("k")
            took = (time.thread_time() - started) / GETS
            best[f"get-hit {name}"] = min(best[f"get-hit {name}"], took)
            started = time.thread_time()
            for _ in range(REQUESTS):
                sent.clear()
                await app(dict(SCOPE), receive, send)
            took = (time.thread_time() - started) / REQUESTS
            best[f"http-hit {name}"] = min(best[f"http-hit {name}"], took)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the checkout to compare with (its root)")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as packages:
        shutil.copytree(args.other / "fastapi_cachekit", Path(packages) / "ck_other")
        shutil.copytree(HERE / "fastapi_cachekit", Path(packages) / "ck_this")
        pairs = {
            "this vs other": {"other": ("ck_other", False), "this": ("ck_this", False)},
            "observed vs not": {"this": ("ck_this", False), "this+observer": ("ck_this", True)},
        }
        for title, variants in pairs.items():
            code = (
                f"import sys, asyncio, json; sys.path.insert(0, {packages!r}); "
                "from benchmarks.hot_path_ab import measure; "
                f"print(json.dumps(asyncio.run(measure({variants!r}, {args.rounds}))))"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=HERE, check=True, capture_output=True, text=True
            ).stdout
            best: dict[str, float] = json.loads(out)
            print(f"## {title} (best of {args.rounds} rounds, thread CPU time)")
            base = next(iter(variants))
            for probe in ("get-hit", "http-hit"):
                for name in variants:
                    ratio = best[f"{probe} {name}"] / best[f"{probe} {base}"]
                    ns = best[f"{probe} {name}"] * 1e9
                    print(f"{probe:9} {name:14} {ns:8.0f} ns  {ratio:.3f}x {base}")


if __name__ == "__main__":
    main()
