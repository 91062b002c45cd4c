"""@cached finds its service at each call when given an app or a function, so a test can
swap the cache after the module defining the function was imported, or after a first call."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from fastapi_cachekit import CacheService, MemoryBackend, cached, setup_cache


def fresh() -> CacheService:
    return CacheService(MemoryBackend())


async def test_an_apps_function_follows_setup_cache_after_the_first_call() -> None:
    app = FastAPI()
    first, second = fresh(), fresh()
    setup_cache(app, first)
    runs: list[int] = []

    @cached(app, namespace="users")
    async def load(user_id: int) -> int:
        runs.append(user_id)
        return user_id * 10

    assert [await load(1), await load(1)] == [10, 10]
    setup_cache(app, second)  # the swap a test makes, long after decoration
    assert await load(1) == 10
    assert runs == [1, 1]  # the second service had no entry: the function ran again
    key = load.cache_key(1)
    assert await second.exists(key, namespace="users")
    assert await load.cache_invalidate(1)  # removes from the current service only
    assert not await second.exists(key, namespace="users")
    assert await first.exists(key, namespace="users")


async def test_setup_cache_after_the_first_request_reaches_cached_functions() -> None:
    """The FAQ's recipe: hand the app a test's service, after it served requests."""
    app = FastAPI()
    setup_cache(app, fresh())
    runs = 0

    @cached(app, ttl=60)
    async def price(product_id: int) -> float:
        nonlocal runs
        runs += 1
        return 9.5

    @app.get("/price/{product_id}")
    async def read_price(product_id: int) -> float:
        return await price(product_id)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/price/1")
        test_cache = setup_cache(app, fresh())
        assert (await client.get("/price/1")).json() == 9.5

    assert runs == 2
    assert await test_cache.exists(price.cache_key(1))


async def test_a_function_source_is_called_at_each_call() -> None:
    current = [fresh()]
    runs = 0

    @cached(lambda: current[0])
    async def answer() -> int:
        nonlocal runs
        runs += 1
        return 42

    await answer()
    current[0] = fresh()
    await answer()
    await answer()
    assert runs == 2


async def test_a_service_given_directly_is_the_one_every_call_uses() -> None:
    app, mine = FastAPI(), fresh()
    setup_cache(app, fresh())

    @cached(mine)
    async def answer() -> int:
        return 42

    await answer()
    setup_cache(app, fresh())  # unrelated to a function bound to a service
    assert await mine.exists(answer.cache_key())


def test_anything_else_is_refused_with_what_to_pass() -> None:
    with pytest.raises(TypeError, match="takes a CacheService, an app set up with setup_cache"):
        cached(42)  # type: ignore[arg-type]
