"""Turning the cache off (`disabled()`, CACHEKIT_ENABLED=false), setup_cache called twice, and
the pytest plugin of fastapi_cachekit/testing.py, the last run as a user's test session."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI

from fastapi_cachekit import CacheService, MemoryBackend, create_cache, setup_cache
from fastapi_cachekit.testing import CacheRecorder, ManualClock, make_test_cache

REPO = Path(__file__).resolve().parents[1]


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        return self.calls


async def test_disabled_runs_the_factory_every_time_and_stores_nothing() -> None:
    cache = CacheService(MemoryBackend())
    factory = Counter()
    with cache.disabled():
        assert not cache.enabled
        assert await cache.get_or_set_async("k", factory) == 1
        assert await cache.get_or_set_async("k", factory) == 2
        assert await cache.set("other", "v") is False
        assert await cache.get("other") is None
        assert not await cache.exists("k")
    assert cache.enabled
    assert await cache.get("k") is None
    assert await cache.get("other") is None
    stats = await cache.get_stats()
    assert stats.bypasses == 4  # two fills, a set and a get skipped the backend
    assert stats.total_misses == 5  # a bypassed read is a miss too (3), plus the 2 gets after
    assert stats.total_entries == 0
    assert await cache.get_or_set_async("k", factory) == 3  # on again: stored ...
    assert await cache.get_or_set_async("k", factory) == 3  # ... and served


async def test_disabled_nests_and_invalidations_still_reach_the_backend() -> None:
    cache = CacheService(MemoryBackend())
    await cache.set("k", 1, tags=["t"])
    with cache.disabled():
        with cache.disabled():
            pass
        assert not cache.enabled  # the inner block restored "off", not "on"
        assert await cache.invalidate_tags(["t"]) == 1
    assert await cache.get("k") is None


async def test_cachekit_enabled_false_turns_the_cache_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEKIT_ENABLED", "false")
    cache = create_cache(backend="memory")
    factory = Counter()
    assert not cache.enabled
    assert [await cache.get_or_set_async("k", factory) for _ in range(2)] == [1, 2]
    assert (await cache.get_stats()).bypasses == 2
    await cache.close()


async def test_setup_cache_twice_wraps_the_lifespan_once() -> None:
    entered: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        entered.append("app")
        yield

    app = FastAPI(lifespan=lifespan)
    first, second = setup_cache(app), CacheService(MemoryBackend())
    hook = app.router.lifespan_context
    assert setup_cache(app, second) is app.state.cachekit
    assert app.router.lifespan_context is hook  # not wrapped again: one hook per app
    async with app.router.lifespan_context(app):
        await second.set("k", 1)
    assert entered == ["app"]
    assert first._lifetime.closed  # created by setup_cache: closed on shutdown
    assert not second._lifetime.closed  # the caller's: flushed, left open
    assert await second.get("k") == 1


async def test_the_manual_clock_expires_entries_and_the_recorder_sees_each_read() -> None:
    clock, recorder = ManualClock(), CacheRecorder()
    cache = make_test_cache(clock, recorder)
    await cache.set("a", 1, ttl=60, namespace="users")
    assert await cache.get("a", namespace="users") == 1
    recorder.assert_hit("users:*")
    clock.advance(60)
    assert await cache.get("a", namespace="users") is None
    recorder.assert_miss("users:a")
    assert recorder.stores() == ["users:a"]
    assert (recorder.hits(), recorder.misses()) == (["users:a"], ["users:a"])
    with pytest.raises(AssertionError, match="the last read of 'users:a' was a miss"):
        recorder.assert_hit()
    with pytest.raises(AssertionError, match="no read of a key matching 'x:\\*'"):
        recorder.assert_miss("x:*")
    with pytest.raises(ValueError, match="time only moves forward"):
        clock.advance(-1)


USER_TESTS = """
import httpx
from fastapi import Depends, FastAPI
from fastapi_cachekit import CacheService, MemoryBackend, cached, get_cache, setup_cache

app = FastAPI()
app_cache = setup_cache(app, CacheService(MemoryBackend()))

@app.get("/double/{n}")
async def double(n: int, cache: CacheService = Depends(get_cache)) -> int:
    return await cache.get_or_set_async(f"double:{n}", lambda: 2 * n, ttl=10)

@cached(app, namespace="square", ttl=10)
async def square(n: int) -> int:
    return n * n

async def call(n):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return (await client.get(f"/double/{n}")).json()

async def test_first(cachekit_setup, cachekit_recorder, cachekit_clock):
    cache = cachekit_setup(app)
    assert app.state.cachekit is cache
    assert [await call(2), await call(2)] == [4, 4]
    cachekit_recorder.assert_hit("double:2")
    cachekit_clock.advance(10)
    await call(2)
    cachekit_recorder.assert_miss("double:2")

async def test_second_gets_a_fresh_cache(cachekit_setup, cachekit_recorder):
    await square(3)  # into the app's own cache, before the test's cache is set up
    cachekit_setup(app)
    await call(2)
    cachekit_recorder.assert_miss("double:2")
    assert [await square(3), await square(3)] == [9, 9]
    cachekit_recorder.assert_hit("square:*")
    assert cachekit_recorder.misses("square:*") == [f"square:{square.cache_key(3)}"]

def test_the_app_has_its_own_cache_back():
    assert app.state.cachekit is app_cache
"""


def test_the_plugin_in_a_users_test_session(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(textwrap.dedent(USER_TESTS))
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_mode = auto\n")
    # The plugin comes from the installed package's pytest11 entry point, as for a user.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
