"""Run the benchmark sections and print one markdown table per section.

    python -m benchmarks.run [--quick] [--section NAME ...] [--json PATH]

Every section runs in this process and one event loop; results also go to a JSON file
(default benchmarks/results/latest.json). `--quick` runs tiny sizes, only to prove that every
section still executes: its figures mean nothing. The exit status is 1 when a row or a section
failed with an error ("not available" rows are not errors).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .harness import Row, error_row, format_table

__all__ = ["SECTIONS", "main"]

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
_PACKAGES = (
    "fastapi-cachekit",
    "cachetools",
    "cashews",
    "aiocache",
    "fastapi-cache2",
    "redis",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "orjson",
)


@dataclass(frozen=True)
class Section:
    """A named group of rows, implemented by `run(quick)` in a module of benchmarks.sections."""

    name: str
    module: str
    title: str

    def runner(self) -> Callable[[bool], Awaitable[list[Row]]]:
        module = importlib.import_module(f"benchmarks.sections.{self.module}")
        run: Callable[[bool], Awaitable[list[Row]]] = module.run
        return run


SECTIONS: dict[str, Section] = {
    section.name: section
    for section in (
        Section("memory", "memory", "Memory: get-hit / get-miss / set, 1k keys"),
        Section("scale", "scale", "Scale: invalidation cost vs size, bytes per entry"),
        Section("http", "http_inprocess", "HTTP in-process (httpx ASGITransport)"),
        Section("http-server", "http_server", "HTTP under uvicorn (one worker), loaded by wrk"),
        Section(
            "workers",
            "http_workers",
            "HTTP hit under uvicorn, 1 and 2 workers, Redis and hybrid",
        ),
        Section("redis", "redis_kv", "Redis: get-hit / set, sequential and concurrent"),
        Section("hybrid", "hybrid", "Hybrid: L1 hit and L2 hit"),
        Section("batch", "batch", "Batches on Redis: get_many / set_many of 50 keys"),
    )
}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--section",
        dest="sections",
        action="extend",
        nargs="+",
        choices=list(SECTIONS),
        metavar="NAME",
        help=f"sections to run (default: all): {', '.join(SECTIONS)}",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    return parser.parse_args(argv)


async def _run_section(section: Section, quick: bool) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        rows = await section.runner()(quick)
        status = "ok"
    except Exception as exc:  # report the section as failed and go on with the others
        traceback.print_exc()
        rows = [error_row(section.name, exc)]
        status = "error"
    if any(row.status == "error" for row in rows):
        status = "error"
    return {
        "name": section.name,
        "title": section.title,
        "status": status,
        "seconds": round(time.perf_counter() - started, 2),
        "rows": [row.to_json() for row in rows],
        "table": format_table(rows),
    }


async def _run_all(names: Sequence[str], quick: bool) -> list[dict[str, Any]]:
    results = []
    for name in names:
        section = SECTIONS[name]
        result = await _run_section(section, quick)
        print(f"\n## {section.title} (`{name}`, {result['seconds']} s)\n", flush=True)
        print(result["table"], flush=True)
        results.append(result)
    return results


def environment(quick: bool) -> dict[str, Any]:
    """What the figures were measured on and with."""
    versions: dict[str, str | None] = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "quick": quick,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git_commit": _git_commit(),
        "packages": versions,
        "redis_server": _tool_version("redis-server", "--version"),
        "wrk": _tool_version("wrk", "--version"),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _tool_version(tool: str, flag: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    out = subprocess.run([path, flag], capture_output=True, text=True, check=False)
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    names = list(dict.fromkeys(args.sections or SECTIONS))
    env = environment(args.quick)
    print(f"# fastapi-cachekit benchmarks{' (quick: figures are meaningless)' * args.quick}\n")
    print(f"`{env['command']}` on Python {env['python']}, {env['platform']}, {env['cpus']} CPUs")
    print(
        "\nratio = the `vs` row's throughput / the row's throughput (how many times slower), "
        "from the medians; best-of-R: from each row's best repetition"
    )
    sections = asyncio.run(_run_all(names, args.quick))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": env, "sections": sections}, indent=2) + "\n")
    print(f"\nresults written to {args.json}")
    return 1 if any(section["status"] == "error" for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
