"""A pattern another process announces is applied to this process's L1: exactly, and without
backtracking (a `*******x` pattern once froze every worker of a hybrid deployment)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import RedisBackend

pytestmark = pytest.mark.redis


@pytest.fixture
async def hybrid(redis_url: str, clean_redis: object) -> AsyncIterator[HybridBackend]:
    backend = HybridBackend(RedisBackend(redis_url))
    yield backend
    await backend.close()


async def test_an_adversarial_announced_pattern_is_applied_to_l1(hybrid: HybridBackend) -> None:
    long_key = "a" * 1000
    for key in (long_key, "pagex", "other"):
        await hybrid.set(key, b"v", ttl=None, namespace=None, tags=())
    announcement = {"o": "p", "a": "*******x", "n": None}
    await hybrid._apply(json.dumps(announcement).encode())
    assert sorted(hybrid.l1._entries) == sorted([long_key, "other"])
