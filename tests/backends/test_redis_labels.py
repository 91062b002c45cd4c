"""The Redis backend's label counts: sampled indexes and the bound on the labels looked at."""

from __future__ import annotations

import pytest

from fastapi_cachekit import CacheService
from fastapi_cachekit.backends.redis import RedisBackend, labels
from tests.backend_kinds import backend_factory

pytestmark = pytest.mark.redis


@pytest.fixture(params=["redis", "redis-cluster"])
async def backend(request: pytest.FixtureRequest) -> RedisBackend:
    built = backend_factory(str(request.param), request)()
    assert isinstance(built, RedisBackend)
    return built


async def test_a_large_index_is_estimated_from_live_members(backend: RedisBackend) -> None:
    big = 3 * labels.SAMPLE
    async with CacheService(backend) as cache:
        for i in range(big):
            await cache.set(f"k{i}", i, namespace=f"ns{i % 2}", tags=["big"])
        for i in range(big):
            await cache.set(f"gone{i}", i, namespace="gone", tags=["stale"])
        await cache.invalidate_namespace("gone")  # the "stale" index keeps dead members
        counts = await backend.label_counts(10)
    assert counts.tags == (("big", big),)  # every sampled member is live: scaled to all
    assert counts.namespaces == (("ns0", big // 2), ("ns1", big // 2))


async def test_past_the_scan_bound_the_counts_say_they_are_incomplete(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = 2 * len(backend.layout.shards) + 1  # so some shard holds 3 labels or more
    async with CacheService(backend) as cache:
        for i in range(entries):
            await cache.set(f"k{i}", i, tags=[f"t{i}"])
        assert (await backend.label_counts(20)).complete
        monkeypatch.setattr(labels, "LABEL_SCAN", 2)
        counts = await backend.label_counts(20)
    assert not counts.complete
    assert 1 <= len(counts.tags) < entries
