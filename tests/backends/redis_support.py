"""Helpers for the Redis backend tests: a raw view of what the backend stored, and the
channel another process announces on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import redis

from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis.channel import SENDER_LENGTH
from tests.redis_servers import RedisServer

RawClient = redis.Redis | redis.RedisCluster


def elsewhere(channel: str) -> str:
    """The channel another process publishes its announcements on: its sender id (dashes)
    differs from any process's own (letters and digits) at every position."""
    return f"{channel}:{'-' * SENDER_LENGTH}"


def open_raw(url: str, cluster: bool) -> RawClient:
    """A plain synchronous client of the same server, to look behind the backend's back."""
    if cluster:
        return redis.RedisCluster.from_url(url)
    return redis.Redis.from_url(url)


def keys(raw: RawClient, match: str = "*") -> set[str]:
    """Every key of the database (all masters of a cluster) matching `match`."""
    if isinstance(raw, redis.RedisCluster):
        found = raw.scan_iter(match=match, target_nodes=redis.RedisCluster.PRIMARIES)
    else:
        found = raw.scan_iter(match=match)
    return {text(key) for key in found}


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def members(raw: RawClient, key: str) -> set[str]:
    """The members of a set."""
    return {text(member) for member in raw.smembers(key)}


def listed(raw: RawClient, backend: RedisBackend) -> set[str]:
    """The full keys in the backend's entry lists (the expiry indexes), over every shard."""
    return {text(m) for s in backend.layout.shards for m in raw.zrange(s.expiries, 0, -1)}


def index_members(raw: RawClient, backend: RedisBackend, kind: str, name: str) -> set[str]:
    """Full keys listed in a namespace ("n") or tag ("t") index, over every shard."""
    found: set[str] = set()
    for shard in backend.layout.shards:
        found |= members(raw, shard.index(kind, name))
    return found


def stored(raw: RawClient, backend: RedisBackend, full_key: str) -> bytes | None:
    value: Any = raw.get(backend.layout.shard_of(full_key).entry(full_key))
    return value if value is None else bytes(value)


def script_calls(servers: Iterable[RedisServer]) -> int:
    """The script calls (EVALSHA) the servers have run so far, summed: how many calls a batch
    made is the difference."""
    total = 0
    for server in servers:
        stats = server.command("INFO", "commandstats")
        total += int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
    return total


def entries(raw: RawClient, backend: RedisBackend) -> Iterator[str]:
    """Full keys of every entry value stored under the backend's prefix."""
    for shard in backend.layout.shards:
        prefix = shard.entry("")
        for key in keys(raw, _escape(prefix) + "*"):
            yield key[len(prefix) :]


def _escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\^" else char for char in text)


class BackendFactory:
    """Makes RedisBackends for one server; `async with` closes every one it made."""

    def __init__(self, url: str, cluster: bool, clock: Callable[[], float]) -> None:
        self.url, self.cluster, self.clock = url, cluster, clock
        self._made: list[RedisBackend] = []

    def __call__(self, **options: Any) -> RedisBackend:
        options.setdefault("clock", self.clock)
        backend = RedisBackend(self.url, cluster=self.cluster, **options)
        self._made.append(backend)
        return backend

    async def __aenter__(self) -> BackendFactory:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for backend in self._made:
            await backend.close()


def server_url(request: pytest.FixtureRequest, topology: str) -> str:
    """The session's single node or cluster URL, by topology name."""
    return str(
        request.getfixturevalue("redis_url" if topology == "single" else "redis_cluster_url")
    )
