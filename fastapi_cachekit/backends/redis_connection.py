"""The Redis backend's link to Redis: a lazily made redis-py client behind a circuit breaker.

Every call goes through `RedisConnection.call`, which fails fast while the breaker is open and
translates every redis-py error into BackendUnavailable (Redis cannot answer) or BackendError
(Redis refused the command), with the original as `__cause__`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from ..errors import BackendError, BackendUnavailable, ConfigurationError
from .redis_faults import CircuitBreaker

__all__ = ["Client", "RedisConnection", "parse_url"]

T = TypeVar("T")
Client = Redis | RedisCluster

_SCHEMES = {"redis", "rediss", "unix"}
# Replies that mean "Redis cannot answer now", as opposed to "Redis refused this command".
_UNREACHABLE_REPLIES = ("BUSY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN")
_SCAN_COUNT = 500


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
        self._scripts: dict[str, AsyncScript] = {}
        # redis-py's cluster client raises instead of waiting when a node's pool is full, so
        # calls wait here for a turn (a single node's blocking pool does that itself).
        self._turns = asyncio.Semaphore(max_connections) if cluster else None
        self.attempts = 0
        """Calls that went to the network (calls refused by the open breaker are not)."""
        self.errors = 0
        """Calls that failed, whether refused, unanswered or rejected by Redis."""

    async def call(self, op: Callable[[Client], Awaitable[T]]) -> T:
        """Run `op` with the client, through the breaker, translating its errors."""
        if not self.breaker.allow():
            self.errors += 1
            raise BackendUnavailable(
                f"Redis is unreachable (circuit open; next probe in {self.breaker.wait():.2f}s)"
            )
        self.attempts += 1
        try:
            if self._turns is None:
                result = await op(await self._connect())
            else:
                async with self._turns:
                    result = await op(await self._connect())
        except (rx.RedisError, rx.RedisClusterException, OSError) as exc:
            raise await self._translate(exc) from exc
        except BaseException:
            self.breaker.abandoned()  # cancelled: no verdict on Redis either way
            raise
        self.breaker.succeeded()
        return result

    async def script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a Lua script (EVALSHA, loading it first if Redis does not know it)."""
        return await self.call(
            lambda client: self._script(client, source)(keys=keys, args=args, client=client)
        )

    async def get(self, key: str) -> bytes | None:
        return _bytes_or_none(await self.call(lambda client: client.get(key)))

    async def get_header(self, key: str, size: int) -> bytes:
        """The first `size` bytes of a string value (b"" when the key is missing)."""
        return (
            _bytes_or_none(await self.call(lambda client: client.getrange(key, 0, size - 1))) or b""
        )

    async def incr(self, key: str) -> int:
        return int(await self.call(lambda client: client.incr(key)))

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
        client, self._client = self._client, None
        self._scripts = {}
        if isinstance(client, RedisCluster):
            await client.aclose()
        elif client is not None:
            await client.aclose(close_connection_pool=True)

    def _script(self, client: Client, source: str) -> AsyncScript:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = client.register_script(source)
        return script

    async def _translate(self, exc: Exception) -> BackendError:
        self.errors += 1
        if not _unreachable(exc):
            self.breaker.succeeded()  # Redis answered: it refused this one command
            return BackendError(f"Redis refused a cache command: {exc}")
        opening = self.breaker.state != "open"
        self.breaker.failed()
        if opening and isinstance(self._client, Redis):
            # Idle pooled sockets are likely dead too: probes should open fresh ones.
            with contextlib.suppress(rx.RedisError, OSError):
                await self._client.connection_pool.disconnect(inuse_connections=False)
        return BackendUnavailable(f"Redis is unreachable: {exc}")

    async def _connect(self) -> Client:
        if self._client is None:
            self._client = self._make_client()
        if isinstance(self._client, RedisCluster):
            # Learn the topology before commands run concurrently: redis-py 8 can lose
            # connections when concurrent first commands race its lazy initialisation.
            await self._client.initialize()  # no-op once initialised
        return self._client

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
        # Blocking: a burst beyond max_connections waits for a free connection, not an error.
        pool = BlockingConnectionPool.from_url(
            self.url, timeout=max(1.0, 2 * self._socket_timeout), **options
        )
        return Redis(connection_pool=pool)


def parse_url(url: str, cluster: bool) -> tuple[str, bool]:
    """The URL redis-py understands, and whether it names a cluster (`+cluster` schemes)."""
    scheme = urlsplit(url).scheme
    if scheme.endswith("+cluster"):
        scheme, cluster = scheme[: -len("+cluster")], True
        url = scheme + url[url.index(":") :]
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"unsupported Redis URL scheme {scheme!r} (CACHEKIT_REDIS_URL): use redis://, "
            "rediss://, unix://, or redis+cluster:// / rediss+cluster:// for a cluster"
        )
    if cluster and scheme == "unix":
        raise ConfigurationError("a Redis Cluster cannot be reached through a unix:// socket")
    return url, cluster


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, rx.MaxConnectionsError):
        return False  # our own pool is full: Redis itself is fine
    if isinstance(exc, (rx.ConnectionError, rx.TimeoutError, rx.RedisClusterException, OSError)):
        return True
    return isinstance(exc, rx.ResponseError) and str(exc).startswith(_UNREACHABLE_REPLIES)


def _bytes_or_none(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise BackendError(f"Redis returned {type(value).__name__} where bytes were expected")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
