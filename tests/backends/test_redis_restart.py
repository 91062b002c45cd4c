"""Fill tokens across a Redis restart without persistence: the sequence and the invalidation
log are lost, and a fill that read the database before an invalidation must still be refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fastapi_cachekit.backends.redis import RedisBackend
from tests.backends.redis_support import BackendFactory
from tests.clock import FakeClock
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def make_backend(redis_server: RedisServer) -> AsyncIterator[BackendFactory]:
    async with BackendFactory(redis_server.url, False, FakeClock()) as factory:
        yield factory


async def fill(backend: RedisBackend, token: int) -> bool:
    return await backend.set("user:1", b"stale", ttl=None, namespace=None, tags=("t",), fill=token)


@pytest.mark.parametrize("invalidated", ["before the restart", "after the restart"])
async def test_a_fill_that_read_before_an_invalidation_is_refused_across_a_restart(
    make_backend: BackendFactory, redis_server: RedisServer, invalidated: str
) -> None:
    filler, writer = make_backend(), make_backend()
    for i in range(5):  # the sequence is well past its start when the fill begins
        await writer.invalidate_tags([f"other-{i}"])
    token = await filler.fill_token()  # the slow fill reads the database now
    if invalidated == "before the restart":
        await writer.invalidate_tags(["t"])
    redis_server.restart()  # kill -9 and start again: every key is gone
    if invalidated == "after the restart":
        await writer.invalidate_tags(["t"])
    assert not await fill(filler, token)
    assert await filler.get("user:1") is None
    # Fills that start after the restart are stored as usual.
    assert await fill(filler, await filler.fill_token())
