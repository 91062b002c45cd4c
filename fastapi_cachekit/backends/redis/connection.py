"""The Redis backend's link to Redis: a lazily made redis-py client behind a circuit breaker.

Every call goes through `RedisConnection.command` (one command) or `call` (any operation on the
client), which fail fast while the breaker is open, wait for one of `max_connections` turns,
and translate every redis-py error into BackendUnavailable (Redis cannot answer) or
BackendError (Redis refused the command), with the original as `__cause__`.

The hot paths (a GET, a script) call `execute_command` directly: no closure per call, and
scripts go as EVALSHA with their SHA1 computed here (SCRIPT LOAD and a second EVALSHA only
when Redis answers NOSCRIPT) rather than through redis-py's Script objects. The pools are
redis-py's plain (non-blocking) ones: calls wait for a turn here instead, which costs far less
per call than redis-py's BlockingConnectionPool, above all under concurrency.

A client's sockets belong to the event loop that opened them. A call from another loop
(`asyncio.run` per job, a test client per test) starts over there with a new client; the old
one is closed as its loop ends (`asyncio.run` cancels every task, and a task kept for that
closes the client then), or, if that loop ended otherwise, dropped without touching it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis import exceptions as rx
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...errors import BackendError, BackendUnavailable, ConfigurationError
from .faults import CircuitBreaker
from .sentinel import SentinelAddress, close_sentinels, is_sentinel_url, primary_client
from .turns import Turns

__all__ = ["Client", "RedisConnection", "close_client", "parse_url", "translate_error"]

T = TypeVar("T")
Client = Redis | RedisCluster

_SCHEMES = {"redis", "rediss", "unix"}
# Replies that mean "Redis cannot answer now", as opposed to "Redis refused this command".
# redis-py raises its own class for some of them, with the reply's first word cut off
# (CLUSTERDOWN, MASTERDOWN: ClusterDownError; TRYAGAIN: TryAgainError; LOADING:
# BusyLoadingError, a ConnectionError); the others come as a ResponseError that keeps it.
_UNREACHABLE_REPLIES = ("BUSY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
_UNREACHABLE_ERRORS = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.RedisClusterException,
    rx.ClusterDownError,
    rx.TryAgainError,
    OSError,
)
_SCAN_COUNT = 500
_COUNTS = tuple(str(count).encode() for count in range(4))  # numkeys, encoded once


class RedisConnection:
    """A redis-py asyncio client (single node or cluster), made on first use."""

    def __init__(
        self,
        url: str,
        *,
        cluster: bool,
        connect_timeout: float,
        socket_timeout: float,
        max_connections: int,
        breaker_max_backoff: float,
    ) -> None:
        self.url = url
        self.cluster = cluster
        self._connect_timeout = connect_timeout
        self._socket_timeout = socket_timeout
        self._max_connections = max_connections
        self.breaker = CircuitBreaker(breaker_max_backoff)
        self._client: Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the client, the line for turns and `_closer` belong to."""
        self._closer: asyncio.Task[None] | None = None
        self._ready: Client | None = None
        """A single node's client once made: calls then skip `_connect`."""
        self._shas: dict[str, bytes] = {}
        # At most max_connections calls at a time, so the pools (one per node on a cluster)
        # never run out: redis-py's non-blocking pools raise instead of waiting.
        self._turns = Turns(max_connections)
        self._turn_wait = max(1.0, 2 * socket_timeout)
        self.attempts = 0
        """Calls that went to the network (calls refused by the open breaker are not)."""
        self.errors = 0
        """Calls that failed, whether refused, unanswered or rejected by Redis."""

    async def command(self, *args: Any) -> Any:
        """Send one command (`execute_command(*args)`), like `call`."""
        return await self.call(lambda client: client.execute_command(*args))

    async def call(self, op: Callable[[Client], Awaitable[T]]) -> T:
        """Run `op` with the client, through the breaker, translating its errors."""
        breaker = self.breaker
        if breaker.state != "closed" and not breaker.allow():
            raise self._refused()
        if self._loop is not asyncio.get_running_loop():
            self._move_to_running_loop()
        turns = self._turns
        try:
            if turns.free:
                turns.free -= 1
            else:
                await self._wait_for_turn()
            self.attempts += 1
            try:
                client = self._ready
                if client is None:
                    client = await self._connect()
                result = await op(client)
            finally:
                turns.release()
        except (rx.RedisError, rx.RedisClusterException, OSError) as exc:
            raise await self._translate(exc) from exc
        except BaseException:
            breaker.abandoned()  # cancelled: no verdict on Redis either way
            raise
        if breaker.state != "closed":
            breaker.succeeded()
        return result

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script: EVALSHA, and when Redis does not know the script (a new or
        restarted server), SCRIPT LOAD and EVALSHA again."""
        sha = self.sha(source)
        count = _COUNTS[len(keys)] if len(keys) < len(_COUNTS) else len(keys)
        try:
            return await self.command("EVALSHA", sha, count, *keys, *args)
        except _ScriptMissing:
            await self.call(lambda client: client.script_load(source))
            return await self.command("EVALSHA", sha, count, *keys, *args)

    def sha(self, source: str) -> bytes:
        """The SHA1 that EVALSHA names the script `source` by (computed once)."""
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode()).hexdigest().encode()
        return sha

    async def get(self, key: str) -> bytes | None:
        return _bytes_or_none(await self.command("GET", key))

    async def get_header(self, key: str, size: int) -> bytes:
        """The first `size` bytes of a string value (b"" when the key is missing)."""
        return _bytes_or_none(await self.command("GETRANGE", key, 0, size - 1)) or b""

    async def incr(self, key: str) -> int:
        return int(await self.command("INCR", key))

    async def scan(
        self, key: str, cursor: int, match: str, *, sorted_set: bool
    ) -> tuple[int, list[str]]:
        """One ZSCAN (sorted set) or SSCAN step: the next cursor and the members found."""

        async def step(client: Client) -> tuple[int, list[str]]:
            if sorted_set:
                after, pairs = await client.zscan(key, cursor, match=match, count=_SCAN_COUNT)
                return int(after), [_text(member) for member, _score in pairs]
            after, members = await client.sscan(key, cursor, match=match, count=_SCAN_COUNT)
            return int(after), [_text(member) for member in members]

        return await self.call(step)

    async def close(self) -> None:
        """Close the client; one that belongs to another loop is dropped (see the module)."""
        closer, ours = self._closer, self._loop is asyncio.get_running_loop()
        self._closer = self._loop = None
        if not ours:
            self._client = self._ready = None
            return
        if closer is not None:
            closer.cancel()
        await self._close_client()

    async def _close_client(self) -> None:
        client, self._client, self._ready = self._client, None, None
        if client is not None:
            await close_client(client)

    def _move_to_running_loop(self) -> None:
        """Start over on the running loop. What belonged to the previous one is dropped, not
        closed: that loop may be closed, and awaiting on it would fail."""
        loop = asyncio.get_running_loop()
        self._client = self._ready = None
        self._turns = Turns(self._max_connections)
        self._loop = loop
        self._closer = loop.create_task(self._close_when_the_loop_ends(loop))

    async def _close_when_the_loop_ends(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait until cancelled: by `asyncio.run` (or anyio) as the loop ends, when closing
        the client on it is still possible, or by `close`."""
        try:
            await loop.create_future()
        finally:
            if self._loop is loop:
                self._loop = self._closer = None
                await self._close_client()

    async def _wait_for_turn(self) -> None:
        """Wait for a turn (all are taken). Refused when none comes within the wait limit
        (Redis is too slow to keep up: treated as unreachable, as a pool timeout would be) or
        when the circuit opened meanwhile."""
        if not await self._turns.wait(self._turn_wait):
            self.errors += 1
            error = BackendUnavailable(
                f"all {self._max_connections} Redis connections stayed busy for "
                f"{self._turn_wait:.1f}s (CACHEKIT_REDIS_MAX_CONNECTIONS)"
            )
            self.breaker.failed(error)
            raise error
        if self.breaker.state == "open":
            self._turns.release()
            raise self._refused()

    def _refused(self) -> BackendUnavailable:
        self.errors += 1
        return BackendUnavailable(
            f"Redis is unreachable (circuit open; next probe in {self.breaker.wait():.2f}s)"
        )

    async def _translate(self, exc: Exception) -> BackendError:
        if isinstance(exc, rx.NoScriptError):
            self.breaker.succeeded()
            return _ScriptMissing(str(exc))  # not a fault: `script` loads it and runs it again
        self.errors += 1
        error = translate_error(exc)
        if not isinstance(error, BackendUnavailable):
            self.breaker.succeeded()  # Redis answered: it refused this one command
            return error
        opening = self.breaker.state != "open"
        self.breaker.failed(f"{type(exc).__name__}: {exc}")
        if opening and isinstance(self._client, Redis):
            # Idle pooled sockets are likely dead too: probes should open fresh ones.
            with contextlib.suppress(rx.RedisError, OSError):
                await self._client.connection_pool.disconnect(inuse_connections=False)
        return error

    def single_node_client(self, url: str | None = None) -> Redis:
        """A client of its own for one node (`url`, or this connection's), with the same
        timeouts: for a pub/sub subscription, which holds its connection. Not behind the
        breaker; translate its errors with `translate_error`."""
        url = url or self.url
        timeouts: dict[str, Any] = {
            "socket_connect_timeout": self._connect_timeout,
            "socket_timeout": self._socket_timeout,
        }
        if is_sentinel_url(url):
            return primary_client(url, timeouts)
        return Redis.from_url(url, **timeouts)

    async def _connect(self) -> Client:
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        if isinstance(client, RedisCluster):
            # Learn the topology before commands run concurrently: redis-py 8 can lose
            # connections when concurrent first commands race its lazy initialisation. Every
            # call comes here (a no-op once initialised, until a topology change resets it).
            await client.initialize()
        else:
            self._ready = client  # a single node's client needs nothing more: skip this
        return client

    def _make_client(self) -> Client:
        # One immediate retry on a dropped connection (a pooled socket of a restarted server);
        # none on timeouts, so a slow Redis costs one socket_timeout, not several.
        retry = Retry(NoBackoff(), 1, supported_errors=(rx.ConnectionError,))
        options: dict[str, Any] = {
            "socket_connect_timeout": self._connect_timeout,
            "socket_timeout": self._socket_timeout,
            "max_connections": self._max_connections,
            "retry": retry,
        }
        if self.cluster:
            return RedisCluster.from_url(self.url, **options)
        if is_sentinel_url(self.url):
            return primary_client(self.url, options)
        return Redis(connection_pool=ConnectionPool.from_url(self.url, **options))


class _ScriptMissing(BackendError):
    """Redis answered NOSCRIPT: it does not know the script (yet)."""


def parse_url(url: str, cluster: bool) -> tuple[str, bool]:
    """The URL redis-py understands (a Sentinel URL is kept: see `sentinel`), and whether it
    names a cluster (`+cluster` schemes)."""
    if is_sentinel_url(url):
        if cluster:
            raise ConfigurationError(
                "a redis+sentinel:// URL names a Sentinel-managed primary, not a Redis Cluster: "
                "unset CACHEKIT_REDIS_CLUSTER (redis_cluster)"
            )
        SentinelAddress.parse(url)  # a malformed URL is refused now, not at the first call
        return url, False
    scheme = urlsplit(url).scheme
    if scheme.endswith("+cluster"):
        scheme, cluster = scheme[: -len("+cluster")], True
        url = scheme + url[url.index(":") :]
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"unsupported Redis URL scheme {scheme!r} (CACHEKIT_REDIS_URL): use redis://, "
            "rediss://, unix://, redis+cluster:// / rediss+cluster:// for a cluster, or "
            "redis+sentinel:// / rediss+sentinel:// for a primary watched by Redis Sentinel"
        )
    if cluster and scheme == "unix":
        raise ConfigurationError("a Redis Cluster cannot be reached through a unix:// socket")
    return url, cluster


async def close_client(client: Client) -> None:
    """Close a client with its connections (to a cluster's nodes, or to a primary and the
    sentinels that named it)."""
    if isinstance(client, RedisCluster):
        await client.aclose()
        return
    await client.aclose(close_connection_pool=True)
    await close_sentinels(client)


def translate_error(exc: Exception) -> BackendError:
    """The package's error for a redis-py error: BackendUnavailable when Redis cannot answer,
    BackendError when it refused the command."""
    if _unreachable(exc):
        return BackendUnavailable(f"Redis is unreachable: {exc}")
    return BackendError(f"Redis refused a cache command: {exc}")


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, rx.MaxConnectionsError):
        return False  # our own pool is full: Redis itself is fine
    if isinstance(exc, _UNREACHABLE_ERRORS):
        return True
    return isinstance(exc, rx.ResponseError) and str(exc).startswith(_UNREACHABLE_REPLIES)


def _bytes_or_none(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise BackendError(f"Redis returned {type(value).__name__} where bytes were expected")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
