"""Section `http-server`: the apps of `http` under a real uvicorn server, loaded over loopback.

One uvicorn process per app (one worker, no access log) on a free loopback port, all started
before the first measurement; the load (wrk, or an httpx loop when wrk is missing) runs
against each server in turn, repeated and interleaved. A row is requests/s; µs/op is its
inverse (server time per request at that concurrency).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..apps import APPS, FLOOR, PATH, AppSpec
from ..harness import Row, compare, row_from_samples, unavailable_row, with_ratios
from ..load import describe, run_load
from ..net import HOST, free_port, wait_for_port
from .http_common import check_hit

__all__ = ["FULL", "QUICK", "Params", "Server", "check", "measure_servers", "run", "servers_of"]

_ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 30.0
_MAX_ERROR_SHARE = 0.01


@dataclass(frozen=True)
class Params:
    duration: int  # seconds per load run (wrk counts whole seconds)
    threads: int
    connections: int
    repeats: int
    warmup: int  # seconds of load before the measured runs, 0 for none


FULL = Params(duration=5, threads=2, connections=50, repeats=3, warmup=1)
QUICK = Params(duration=1, threads=1, connections=4, repeats=1, warmup=0)


@dataclass(frozen=True)
class Server:
    """A uvicorn process serving one app."""

    spec: AppSpec
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{PATH}"


@contextlib.contextmanager
def servers_of(
    specs: list[AppSpec], workers: Sequence[int] | None = None, env: dict[str, str] | None = None
) -> Iterator[list[Server]]:
    """Start one uvicorn per app (with `workers[i]` workers, default 1, and `env` added to
    the environment); stop each by its PID on exit."""
    with tempfile.TemporaryDirectory(prefix="cachekit-bench-uvicorn-") as directory:
        servers: list[Server] = []
        try:
            for i, spec in enumerate(specs):
                count = 1 if workers is None else workers[i]
                servers.append(_start(spec, Path(directory), count, env))
            for server in servers:
                _wait(server, Path(directory))
            yield servers
        finally:
            for server in servers:
                _stop(server.process)


def _start(
    spec: AppSpec, directory: Path, workers: int = 1, env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", spec.target, "--factory",
        "--host", HOST, "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    log = (directory / f"{port}.log").open("wb")
    environment = None if env is None else {**os.environ, **env}
    with log:
        process = subprocess.Popen(
            argv, cwd=_ROOT, stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    return Server(spec, port, process)


def _wait(server: Server, directory: Path) -> None:
    try:
        wait_for_port(server.port, _START_TIMEOUT, alive=lambda: server.process.poll() is None)
    except (RuntimeError, TimeoutError) as exc:
        log = (directory / f"{server.port}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"uvicorn for {server.spec.name!r} did not start: {exc}\n{log}"
        ) from None


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def check(servers: list[Server]) -> None:
    """Each server answers its app's second request with a hit (see `check_hit`)."""
    for server in servers:
        base = f"http://{HOST}:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=10.0) as client:
            await check_hit(client, server.spec, in_process=False)


async def measure_servers(servers: list[Server], params: Params) -> dict[str, list[float]]:
    """Requests/s of each server, `params.repeats` times, interleaved (by server spec name)."""
    samples: dict[str, list[float]] = {server.spec.name: [] for server in servers}
    if params.warmup:
        for server in servers:
            await run_load(server.url, params.threads, params.connections, params.warmup)
    for round_no in range(params.repeats):
        shift = round_no % len(servers)
        for server in [*servers[shift:], *servers[:shift]]:
            result = await run_load(server.url, params.threads, params.connections, params.duration)
            if result.errors > _MAX_ERROR_SHARE * max(result.requests, 1):
                raise RuntimeError(
                    f"{server.spec.name}: {result.errors} of {result.requests} requests failed"
                )
            samples[server.spec.name].append(result.requests_per_s)
    return samples


async def run(quick: bool) -> list[Row]:
    params = QUICK if quick else FULL
    available = [spec for spec in APPS if spec.unavailable() is None]
    with servers_of(available) as servers:
        await check(servers)
        samples = await measure_servers(servers, params)
    note = describe(params.threads, params.connections, params.duration)
    rows: list[Row] = []
    for spec in APPS:
        reason = spec.unavailable()
        if reason is not None:
            rows.append(unavailable_row(spec.name, reason))
            continue
        baseline = None if spec.name == FLOOR else FLOOR
        rows.append(
            row_from_samples(spec.name, samples[spec.name], None, baseline=baseline, note=note)
        )
    rows = with_ratios(rows)
    for spec in APPS:
        if spec.compare_with is not None:
            compare(rows, spec.name, spec.compare_with)
    return rows
