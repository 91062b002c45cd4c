"""The full chaos suite (`make chaos`): every scenario on redis and hybrid, 4 uvicorn workers,
the table printed and written to docs/reliability.md.

    python -m tests.chaos.run            # full: 4 workers, longer faults, 3,000-slot reshard,
                                         # and the worker kill on the cluster too
    python -m tests.chaos.run --short    # the scale `make test` runs, docs left alone

Exits 1 when a guarantee does not hold (or a fault could not be injected); the table is
written either way, so it shows what failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.redis_servers import RedisServers

from .metrics import Outcome
from .report import format_table, format_verdict, write_table
from .runner import BACKENDS, FULL, SCENARIOS, SHORT, ChaosApps, run_scenario, violations

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


async def run_all(apps: ChaosApps, short: bool) -> tuple[list[Outcome], list[str]]:
    outcomes, problems = [], []
    for scenario in SCENARIOS:
        if short and not scenario.short:
            continue
        for backend in BACKENDS:
            label = f"{scenario.name} / {backend}"
            try:
                outcome = await run_scenario(apps, scenario, backend)
            except Exception as exc:  # report it and go on with the other scenarios
                problems.append(f"{label}: could not run: {exc!r}")
                continue
            outcomes.append(outcome)
            problems += [f"{label}: {v}" for v in violations(outcome)]
            print(format_table([outcome]).splitlines()[-1], flush=True)
    return outcomes, problems


def current_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "unknown"


def provenance(short: bool, commit: str, seconds: float) -> str:
    command = "python -m tests.chaos.run" + (" --short" if short else "")
    return (
        f"Measured with `make chaos` (`{command}`) at commit `{commit}`, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}, on {os.cpu_count()} CPUs "
        f"({platform.machine()}, Python {platform.python_version()}), in {seconds:.0f} s."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the scale of `make test`")
    parser.add_argument("--no-docs", action="store_true", help="print the table only")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        print("redis-server is not installed (Debian: apt-get install redis-server)")
        return 2
    servers = RedisServers(binary)
    apps = ChaosApps(servers, SHORT if args.short else FULL)
    started, commit = time.monotonic(), current_commit()
    try:
        outcomes, problems = asyncio.run(run_all(apps, args.short))
    finally:
        apps.close()
        servers.close()
    table = format_table(outcomes)
    print(table)
    if not args.no_docs and not args.short:
        made = provenance(args.short, commit, time.monotonic() - started)
        write_table(PAGE, table, made, format_verdict(problems))
        print(f"written to {PAGE}")
    for problem in problems:
        print("GUARANTEE NOT MET:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
