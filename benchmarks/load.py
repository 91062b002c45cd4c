"""Load generators for the `http-server` section: wrk, or a bounded httpx client loop."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from dataclasses import dataclass

import httpx

__all__ = ["LoadResult", "describe", "run_load"]

_MAX_PYTHON_REQUESTS = 200_000


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    requests_per_s: float
    requests: int
    errors: int
    latency: str = ""


def describe(threads: int, connections: int, duration: int) -> str:
    """How the load is generated (the row note)."""
    if shutil.which("wrk"):
        return f"wrk -t{threads} -c{connections} -d{duration}s"
    return f"httpx client, {connections} tasks, {duration} s (wrk not installed)"


async def run_load(url: str, threads: int, connections: int, duration: int) -> LoadResult:
    """Load `url` for `duration` seconds with wrk if installed, else with httpx."""
    wrk = shutil.which("wrk")
    if wrk is not None:
        return await _wrk(wrk, url, threads, connections, duration)
    return await _python(url, connections, duration)


async def _wrk(wrk: str, url: str, threads: int, connections: int, duration: int) -> LoadResult:
    argv = [wrk, f"-t{threads}", f"-c{max(connections, threads)}", f"-d{duration}s", url]
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    text = out.decode()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.decode().strip() or text}")
    return parse_wrk(text)


def parse_wrk(text: str) -> LoadResult:
    """Requests/s, request count and errors from wrk's report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    count = re.search(r"(\d+) requests in", text)
    if rate is None or count is None:
        raise RuntimeError(f"cannot read wrk's report:\n{text}")
    errors = 0
    if bad := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(bad.group(1))
    if sockets := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    ):
        errors += sum(int(group) for group in sockets.groups())
    latency = re.search(r"Latency\s+(\S+)", text)
    return LoadResult(
        float(rate.group(1)), int(count.group(1)), errors, latency.group(1) if latency else ""
    )


async def _python(url: str, connections: int, duration: int) -> LoadResult:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    done = errors = 0
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline and done < _MAX_PYTHON_REQUESTS:
                response = await client.get(url)
                done += 1
                errors += response.status_code != 200

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return LoadResult(done / elapsed, done, errors)
