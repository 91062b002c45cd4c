"""One chaos run: load against a multi-worker app, a fault in the middle, then the checks.

Phases: warm-up under load, the fault (in a thread, the load keeps going), recovery under
load; then, with the load stopped and the stale bound elapsed, every item is read through
both endpoints: a version older than the last acknowledged write is a lost invalidation.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.redis_servers import RedisServer, RedisServers

from . import faults
from .faults import FaultContext
from .load import ENDPOINTS, LoadPlan, Read, Recorder, Write, generate, item_names, read, write
from .metrics import FaultWindow, Outcome, summarize
from .server import ChaosServer

__all__ = [
    "BACKENDS",
    "FULL",
    "SCENARIOS",
    "SHORT",
    "STALE_BOUND",
    "ChaosApps",
    "Scale",
    "Scenario",
    "run_scenario",
    "violations",
]

Inject = Callable[[FaultContext], FaultWindow]


@dataclass(frozen=True)
class Scenario:
    name: str
    slug: str  # the test id
    topology: str  # "single" or "cluster"
    inject: Inject
    short: bool = True  # part of the short version (`make test`), not only of `make chaos`


SCENARIOS = (
    Scenario("redis-server kill -9, restart", "kill-restart", "single", faults.kill_and_restart),
    Scenario("redis-server SIGSTOP, SIGCONT", "stop-continue", "single", faults.stop_and_continue),
    Scenario("worker SIGKILL mid-fill", "worker-kill", "single", faults.kill_worker_mid_fill),
    Scenario(
        "worker SIGKILL mid-fill", "worker-kill", "cluster", faults.kill_worker_mid_fill, False
    ),
    Scenario("cluster reshard under load", "reshard", "cluster", faults.reshard),
    Scenario("cluster master killed, replica promoted", "failover", "cluster", faults.failover),
)
BACKENDS = ("redis", "hybrid")


@dataclass(frozen=True)
class Scale:
    workers: int
    plan: LoadPlan
    warm_up: float
    recovery: float
    outage: float
    reshard_slots: int


SHORT = Scale(2, LoadPlan(6, 6, 0.05, 20_000), 1.0, 2.0, 1.5, 400)
FULL = Scale(4, LoadPlan(40, 16, 0.02, 500_000), 3.0, 6.0, 3.0, 3000)
_FINISH_TIMEOUT = 30.0


STALE_BOUND = 1.0
"""Seconds after an acknowledged invalidation (or after Redis answers again, for one
acknowledged while it did not) beyond which no read may return the invalidated version, on
both backends: a worker probes Redis within 0.5 s and then replays what it queued, and a
hybrid worker drops L1 copies on the announcement (milliseconds), not at the L1 cap."""


def violations(outcome: Outcome) -> list[str]:
    """The guarantees this outcome breaks, each saying what was seen."""
    found = []
    if outcome.failed:
        found.append(
            f"{outcome.failed} failed requests (the cache must fail open): "
            + "; ".join(outcome.failures[:10])
        )
    if outcome.beyond_bound:
        found.append(
            f"{outcome.beyond_bound} stale reads more than {outcome.bound:g} s after an "
            f"acknowledged invalidation (longest {outcome.longest_stale:.2f} s)"
        )
    if outcome.lost:
        found.append(f"{outcome.lost} items kept serving an invalidated version (lost)")
    if outcome.back_to_hits is None:
        found.append("no hit on a new entry after the fault (the cache never came back)")
    return found


class ChaosApps:
    """The app servers, one per backend and topology, started on first use."""

    def __init__(self, redis_servers: RedisServers, scale: Scale) -> None:
        self.redis_servers = redis_servers
        self.scale = scale
        self._root = Path(tempfile.mkdtemp(prefix="cachekit-chaos-"))
        self._servers: dict[tuple[str, str], ChaosServer] = {}

    def nodes(self, topology: str) -> list[RedisServer]:
        if topology == "single":
            return [self.redis_servers.single()]
        return self.redis_servers.replicated_cluster()

    def server(self, backend: str, topology: str) -> ChaosServer:
        if (backend, topology) not in self._servers:
            directory = self._root / f"{backend}-{topology}"
            directory.mkdir()
            server = ChaosServer(
                backend=backend,
                redis_url=self.nodes(topology)[0].url,
                cluster=topology == "cluster",
                workers=self.scale.workers,
                directory=directory,
            )
            server.start()
            self._servers[backend, topology] = server
        return self._servers[backend, topology]

    def close(self) -> None:
        for server in self._servers.values():
            server.stop()
        shutil.rmtree(self._root, ignore_errors=True)


async def run_scenario(apps: ChaosApps, scenario: Scenario, backend: str) -> Outcome:
    scale = apps.scale
    server = apps.server(backend, scenario.topology)
    recorder, stop = Recorder(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def write_recorded(item: str) -> None:  # called from the fault's thread
        done = asyncio.run_coroutine_threadsafe(_write_once(server.url, item), loop)
        recorder.writes.append(done.result(timeout=_FINISH_TIMEOUT))

    context = FaultContext(
        server, apps.nodes(scenario.topology), scale.outage, scale.reshard_slots, write_recorded
    )
    load = asyncio.create_task(generate(server.url, scale.plan, recorder, stop))
    try:
        await asyncio.sleep(scale.warm_up)  # a phase of the load, not a synchronisation
        window = await asyncio.to_thread(scenario.inject, context)
        await asyncio.sleep(scale.recovery)
    finally:
        stop.set()
        await asyncio.wait_for(load, _FINISH_TIMEOUT)
    bound = STALE_BOUND
    await asyncio.sleep(bound)  # let the documented bound pass before looking for leftovers
    final: list[Read] = []
    try:
        lost = await asyncio.wait_for(
            _lost_invalidations(server, recorder, scale.plan, final), _FINISH_TIMEOUT
        )
    except asyncio.TimeoutError:  # TimeoutError from 3.11 on
        raise RuntimeError(_slow_final_reads(server, final)) from None
    names = (scenario.name, backend, scenario.topology)
    return summarize(names, recorder, window, bound, lost)


async def _write_once(url: str, item: str) -> Write:
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        return await write(client, item)


async def _lost_invalidations(
    server: ChaosServer, recorder: Recorder, plan: LoadPlan, final: list[Read]
) -> int:
    """Items that some worker still serves at a version older than their last acknowledged
    write (every item through both endpoints, twice per worker); each read goes in `final`."""
    acknowledged: dict[str, int] = {}
    for done in recorder.writes:
        if done.version is not None:
            acknowledged[done.item] = max(done.version, acknowledged.get(done.item, 0))
    lost = set()
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0, limits=limits) as client:
        for item in item_names(plan.items):
            for endpoint in ENDPOINTS:
                for _ in range(2 * server.workers):
                    result = await read(client, item, endpoint)
                    final.append(result)
                    if result.error is not None:  # fail now, not after every read timed out
                        raise RuntimeError(
                            f"after the fault, a worker did not answer /{endpoint}/{item}: "
                            f"{result.error} after {result.end - result.start:.2f} s; its "
                            f"log:\n{server.log_tail()}"
                        )
                    if result.version is not None and result.version < acknowledged.get(item, 0):
                        lost.add(item)
    return len(lost)


def _slow_final_reads(server: ChaosServer, final: list[Read]) -> str:
    """Why the final reads did not end in time: the slowest of them, and the servers' log."""
    slowest = sorted(final, key=lambda r: r.end - r.start, reverse=True)[:5]
    listed = ", ".join(f"/{r.endpoint}/{r.item} {r.end - r.start:.2f} s" for r in slowest)
    return (
        f"the final reads took over {_FINISH_TIMEOUT:g} s ({len(final)} done; slowest: "
        f"{listed}); the log:\n{server.log_tail()}"
    )
