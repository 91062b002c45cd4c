"""The backends a test can run on, built the same way for every suite that runs on several."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from fastapi_cachekit.backends.base import CacheBackend
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.memory import MemoryBackend
from fastapi_cachekit.backends.redis import RedisBackend

Clock = Callable[[], float]
BackendFactory = Callable[[Clock], CacheBackend]

ALL_KINDS: list[Any] = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=pytest.mark.redis),
    pytest.param("hybrid", marks=pytest.mark.redis),
    pytest.param("hybrid-cluster", marks=pytest.mark.redis),
    pytest.param("redis-sentinel", marks=pytest.mark.redis),
    pytest.param("hybrid-sentinel", marks=pytest.mark.redis),
    pytest.param("valkey", marks=pytest.mark.redis),
    pytest.param("hybrid-valkey", marks=pytest.mark.redis),
]

# The server a kind runs on, by the last word of its name (the session's single node if none).
_SERVERS = {
    "cluster": "redis_cluster_url",
    "sentinel": "redis_sentinel_url",
    "valkey": "valkey_server_url",
}

_prefixes = itertools.count()


def backend_factory(kind: str, request: pytest.FixtureRequest) -> BackendFactory:
    """Makes fresh, separate backends of `kind` (Redis ones on the session's own servers,
    flushed before the test, each under a key prefix of its own)."""
    if kind == "memory":
        return lambda clock=time.time: MemoryBackend(max_items=100_000, clock=clock)
    request.getfixturevalue("clean_redis")
    cluster = kind.endswith("-cluster")
    url = request.getfixturevalue(_SERVERS.get(kind.rsplit("-", 1)[-1], "redis_url"))

    def build(clock: Clock = time.time) -> CacheBackend:
        prefix = f"t{next(_prefixes)}"
        redis = RedisBackend(url, key_prefix=prefix, cluster=cluster, clock=clock)
        if kind.startswith("hybrid"):
            return HybridBackend(redis, max_items=100_000, clock=clock)
        return redis

    return build


HTTP_KINDS: list[Any] = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("hybrid", marks=pytest.mark.redis),
]


class BackendSwitch:
    """The backend kind the HTTP tests build their services on (see tests/fastapi/conftest).

    Tests call `new_backend(clock)`; the `http_backend` fixture points it at the kind under
    test and closes what was built.
    """

    def __init__(self) -> None:
        self.factory: BackendFactory = lambda clock=time.time: MemoryBackend(clock=clock)
        self.built: list[CacheBackend] = []

    def __call__(self, clock: Clock = time.time) -> CacheBackend:
        backend = self.factory(clock)
        self.built.append(backend)
        return backend


new_backend = BackendSwitch()
