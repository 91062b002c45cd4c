"""The contract suite runs every test against every backend: each keeps the same contract."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.base import CacheBackend
from tests.backend_kinds import ALL_KINDS, backend_factory
from tests.clock import FakeClock

MakeCache = Callable[..., CacheService]
MakeBackend = Callable[[], CacheBackend]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=ALL_KINDS)
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_backend(
    backend_kind: str, clock: FakeClock, request: pytest.FixtureRequest
) -> MakeBackend:
    """Builds a fresh, separate backend of the kind under test, on the fake clock."""
    factory = backend_factory(backend_kind, request)
    return lambda: factory(clock)


@pytest.fixture
async def make_cache(make_backend: MakeBackend) -> AsyncIterator[MakeCache]:
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
