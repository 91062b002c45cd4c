"""The contract suite runs every test against every backend (principle 1: backend parity)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fastapi_cachekit import CacheService, MemoryBackend
from fastapi_cachekit.backends.base import CacheBackend
from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend
from tests.clock import FakeClock

BACKENDS = [
    "memory",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=pytest.mark.redis),
    pytest.param("hybrid", marks=pytest.mark.redis),
]

MakeCache = Callable[..., CacheService]
_prefixes = itertools.count()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(
    backend_kind: str, clock: FakeClock, request: pytest.FixtureRequest
) -> Callable[[], CacheBackend]:
    """Builds a fresh, separate backend of the kind under test, on the fake clock."""
    if backend_kind == "memory":
        return lambda: MemoryBackend(max_items=100_000, clock=clock)
    request.getfixturevalue("clean_redis")
    cluster = backend_kind == "redis-cluster"
    url = request.getfixturevalue("redis_cluster_url" if cluster else "redis_url")

    def build() -> CacheBackend:
        # A prefix of its own per backend, so two caches in one test are as separate as
        # two memory backends would be.
        redis = RedisBackend(url, key_prefix=f"t{next(_prefixes)}", cluster=cluster, clock=clock)
        if backend_kind == "hybrid":
            return HybridBackend(redis, max_items=100_000, clock=clock)
        return redis

    return build


@pytest.fixture
async def make_cache(make_backend: Callable[[], CacheBackend]) -> AsyncIterator[MakeCache]:
    """Builds services over fresh backends; all are closed after the test."""
    made: list[CacheService] = []

    def build(**options: Any) -> CacheService:
        service = CacheService(make_backend(), **options)
        made.append(service)
        return service

    yield build
    for service in made:
        await service.close()


@pytest.fixture
def cache(make_cache: MakeCache) -> CacheService:
    return make_cache()
