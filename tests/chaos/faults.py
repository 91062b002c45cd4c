"""The faults the suite injects, each a blocking function that returns when the fault is over.

Every wait is bounded; a fault that cannot be brought about raises, so a scenario never
reports numbers for a fault that did not happen.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.redis_servers import RedisServer

from .load import ENDPOINTS
from .metrics import FaultWindow
from .server import ChaosServer

__all__ = [
    "FaultContext",
    "failover",
    "kill_and_restart",
    "kill_worker_mid_fill",
    "reshard",
    "stop_and_continue",
]

_WAIT_LIMIT = 30.0
VICTIM = "i0"  # the item whose fill the worker-kill scenario interrupts
_OWN_READS = 32  # at most, of the reads the worker-kill scenario sends itself


@dataclass(frozen=True)
class FaultContext:
    server: ChaosServer
    nodes: list[RedisServer]  # the single node, or every node of the replicated cluster
    outage: float  # seconds a stopped or killed redis-server stays down
    reshard_slots: int
    write: Callable[[str], None]  # an acknowledged write through the app, recorded


def kill_and_restart(ctx: FaultContext) -> FaultWindow:
    """`kill -9` the redis-server, keep it down, start it again empty on the same port."""
    node = ctx.nodes[0]
    start = time.monotonic()
    node.stop()
    time.sleep(ctx.outage)  # the outage itself
    node.start()
    return FaultWindow(start, time.monotonic(), redis_down=True)


def stop_and_continue(ctx: FaultContext) -> FaultWindow:
    """SIGSTOP the redis-server (connections stay open, nothing answers), then SIGCONT."""
    pid = ctx.nodes[0].pid
    assert pid is not None
    start = time.monotonic()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(ctx.outage)  # the stall itself
    finally:
        os.kill(pid, signal.SIGCONT)
    return FaultWindow(start, time.monotonic(), redis_down=True)


def kill_worker_mid_fill(ctx: FaultContext) -> FaultWindow:
    """SIGKILL one of two workers stopped in a fill of VICTIM, and change VICTIM before the
    other's fill resumes; the fault lasts until uvicorn has a new worker ready."""
    truth, server = ctx.server.truth, ctx.server
    truth.clear_holders(VICTIM)
    truth.hold_path(VICTIM).touch()
    own_reads: list[socket.socket] = []

    def two_holders() -> bool:
        if len(truth.holders(VICTIM)) >= 2:
            return True
        # The load alone can leave a worker without a read of VICTIM for seconds (all its
        # readers held in the other worker's fill) until their requests time out: send a few
        # of our own, unrecorded, so that both workers get one.
        if len(own_reads) < _OWN_READS:
            own_reads.extend(_send_reads_of_the_victim(server.port))
        return False

    try:
        ctx.write(VICTIM)  # the next reads of VICTIM miss, and their fills stop midway
        _wait(two_holders, "two workers never filled the victim")
        ready = len(server.ready_workers())
        killed_at = time.monotonic()
        os.kill(min(truth.holders(VICTIM)), signal.SIGKILL)
        # The surviving fill read the version this write replaces: when it resumes, it must
        # not store it (no stale write-back).
        ctx.write(VICTIM)
    finally:
        truth.hold_path(VICTIM).unlink(missing_ok=True)
        for sock in own_reads:
            sock.close()
    server.wait_for_workers(ready + 1)
    return FaultWindow(killed_at, time.monotonic(), redis_down=False, killed_at=killed_at)


def reshard(ctx: FaultContext) -> FaultWindow:
    """`redis-cli --cluster reshard`: move slots, key by key, from one master to another."""
    entry = _live(ctx.nodes)[0]
    _wait(lambda: _cluster_agrees(entry), "the cluster's nodes disagree about the slots")
    masters = _masters(entry)
    source = max(masters, key=lambda node_id: masters[node_id])
    target = next(node_id for node_id in masters if node_id != source)
    argv = ["redis-cli", "--cluster", "reshard", f"127.0.0.1:{entry.port}"]
    argv += ["--cluster-from", source, "--cluster-to", target]
    argv += ["--cluster-slots", str(ctx.reshard_slots), "--cluster-yes"]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster reshard failed:\n{done.stdout[-2000:]}")
    return FaultWindow(start, time.monotonic(), redis_down=False)  # ASK redirects, no outage


def failover(ctx: FaultContext) -> FaultWindow:
    """SIGKILL a master; the fault lasts until its replica is promoted and the cluster is ok.
    The killed node then restarts and rejoins as a replica (outside the window)."""
    live = _live(ctx.nodes)
    by_port = {node.port: node for node in live}
    app_node = ctx.nodes[0]  # the app's startup node stays up
    victim_id, victim_port = next(
        (node_id, port)
        for node_id, port in _replicated_masters(live[0]).items()
        if port != app_node.port
    )
    victim = by_port[victim_port]
    witness = app_node if app_node.running else next(n for n in live if n is not victim)
    start = time.monotonic()
    victim.stop()
    _wait(lambda: _replaced(witness, victim_id), "no replica took over the killed master")
    end = time.monotonic()
    victim.start()
    _wait(lambda: _is_linked_replica(victim), "the killed master did not rejoin as a replica")
    return FaultWindow(start, end, redis_down=True)


def _send_reads_of_the_victim(port: int) -> list[socket.socket]:
    """A GET of VICTIM through each endpoint, each on a new connection left open (the answer
    is never read)."""
    sent = []
    for endpoint in ENDPOINTS:
        sock = socket.create_connection(("127.0.0.1", port), timeout=_WAIT_LIMIT)
        sock.sendall(f"GET /{endpoint}/{VICTIM} HTTP/1.1\r\nHost: chaos\r\n\r\n".encode())
        sent.append(sock)
    return sent


def _wait(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + _WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.02)


def _live(nodes: list[RedisServer]) -> list[RedisServer]:
    return [node for node in nodes if node.running]


def _nodes_table(node: RedisServer) -> list[list[str]]:
    """CLUSTER NODES, one list of fields per node."""
    reply = node.command("CLUSTER", "NODES")
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return [line.split() for line in text.splitlines() if line.strip()]


def _masters(node: RedisServer) -> dict[str, int]:
    """Live masters that hold slots: node id -> number of slots."""
    masters = {}
    for fields in _nodes_table(node):
        if "master" in fields[2] and "fail" not in fields[2] and len(fields) > 8:
            masters[fields[0]] = sum(_slot_count(part) for part in fields[8:])
    return masters


def _slot_count(part: str) -> int:
    if part.startswith("["):  # a slot being migrated, also counted in its range
        return 0
    first, _, last = part.partition("-")
    return int(last or first) - int(first) + 1


def _replicated_masters(node: RedisServer) -> dict[str, int]:
    """Live masters with a live replica: node id -> port."""
    table = _nodes_table(node)
    followed = {f[3] for f in table if "slave" in f[2] and "fail" not in f[2]}
    return {
        f[0]: int(f[1].split("@")[0].rsplit(":", 1)[1])
        for f in table
        if "master" in f[2] and "fail" not in f[2] and f[0] in followed and len(f) > 8
    }


def _replaced(witness: RedisServer, victim_id: str) -> bool:
    """The cluster is ok again, and the victim is marked failed with no slots left."""
    info = witness.command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    victim = next(f for f in _nodes_table(witness) if f[0] == victim_id)
    failed = "fail" in victim[2].split(",")  # "fail?" is only suspected
    return "cluster_state:ok" in text and failed and len(victim) <= 8


def _is_linked_replica(node: RedisServer) -> bool:
    info = node.command("INFO", "replication")  # a dict, parsed by redis-py
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def _cluster_agrees(node: RedisServer) -> bool:
    argv = ["redis-cli", "--cluster", "check", f"127.0.0.1:{node.port}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return done.returncode == 0 and "[ERR]" not in done.stdout
