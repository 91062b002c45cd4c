"""The `cachekit` command, run as a user runs it (`python -m fastapi_cachekit`, a separate
process) against the session's real redis-server, with entries written by an app's cache."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from fastapi_cachekit import CacheService, create_cache
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def cachekit(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fastapi_cachekit", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.fixture
def env(redis_url: str, clean_redis: object) -> dict[str, str]:
    """The app's settings, as the command reads them: CACHEKIT_* variables only."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("CACHEKIT_")}
    return clean | {"PYTHONPATH": str(REPO), "CACHEKIT_REDIS_URL": redis_url}


def app_cache_call(redis_url: str, operation: Callable[[CacheService], Awaitable[T]]) -> T:
    """Run one operation on a cache configured like the app's, in its own event loop."""

    async def run() -> T:
        async with create_cache(backend="redis", redis_url=redis_url) as cache:
            return await operation(cache)

    return asyncio.run(run())


@pytest.fixture
def app_entries(redis_url: str, clean_redis: object) -> None:
    async def write(cache: CacheService) -> None:
        await cache.set("user:1", {"name": "Ada"}, namespace="users", tags=["team:a"])
        await cache.set("user:2", {"name": "Bob"}, namespace="users", tags=["team:b"])
        await cache.set("greeting", "hello")
        await cache.set("session:x", 1, namespace="sessions")

    app_cache_call(redis_url, write)


def value_of(redis_url: str, key: str, namespace: str | None = None) -> Any:
    return app_cache_call(redis_url, lambda cache: cache.get(key, namespace))


def test_stats_as_a_table_and_as_json(
    app_entries: None, redis_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    table = cachekit("stats", env=env, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "total_entries          4" in table.stdout
    as_json = cachekit("--json", "stats", env=env, cwd=tmp_path)
    assert json.loads(as_json.stdout)["total_entries"] == 4


def test_get_and_inspect_a_key(
    app_entries: None, redis_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    found = cachekit("--json", "get", "user:1", "-n", "users", env=env, cwd=tmp_path)
    assert found.returncode == 0
    assert json.loads(found.stdout)["value"] == {"name": "Ada"}
    inspected = json.loads(cachekit("--json", "inspect", "greeting", env=env, cwd=tmp_path).stdout)
    assert inspected["stored_bytes"] == len(b'"hello"')
    assert inspected["value_type"] == "str"
    missing = cachekit("get", "user:1", env=env, cwd=tmp_path)  # not without its namespace
    assert missing.returncode == 1
    assert "found      False" in missing.stdout


def test_a_value_in_another_format_is_described_not_decoded(
    app_entries: None, redis_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    app_cache_call(redis_url, lambda cache: cache.set_raw("page", b"\x00binary", namespace="route"))
    result = cachekit("--json", "inspect", "page", "-n", "route", env=env, cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout)["note"].startswith("not in the codec's format")


def test_invalidate_by_tag_namespace_and_pattern(
    app_entries: None, redis_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    by_tag = cachekit("--json", "invalidate", "--tag", "team:a", env=env, cwd=tmp_path)
    assert json.loads(by_tag.stdout) == {"removed": 1}
    assert value_of(redis_url, "user:2", "users") == {"name": "Bob"}
    by_pattern = cachekit("invalidate", "-p", "user:*", "-n", "users", env=env, cwd=tmp_path)
    assert by_pattern.stdout.split() == ["removed", "1"]
    by_namespace = cachekit("--json", "invalidate", "-n", "sessions", env=env, cwd=tmp_path)
    assert json.loads(by_namespace.stdout) == {"removed": 1}
    assert value_of(redis_url, "greeting") == "hello"


def test_clear_needs_confirmation(
    app_entries: None, redis_url: str, env: dict[str, str], tmp_path: Path
) -> None:
    refused = cachekit("clear", env=env, cwd=tmp_path)
    assert refused.returncode == 2
    assert "pass --yes" in refused.stderr
    assert value_of(redis_url, "greeting") == "hello"
    cleared = cachekit("--json", "clear", "--yes", env=env, cwd=tmp_path)
    assert json.loads(cleared.stdout) == {"removed": 4}
    assert json.loads(cachekit("--json", "cleanup", env=env, cwd=tmp_path).stdout) == {"removed": 0}


def test_usage_and_configuration_errors_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    nothing = cachekit("invalidate", env=env, cwd=tmp_path)
    assert nothing.returncode == 2
    assert "--tag TAG (repeatable), --namespace NS, or --pattern GLOB" in nothing.stderr
    bad_key = cachekit("get", "", env=env, cwd=tmp_path)
    assert bad_key.returncode == 2
    pickle = cachekit("stats", env=env | {"CACHEKIT_SERIALIZER": "pickle"}, cwd=tmp_path)
    assert pickle.returncode == 2
    assert "CACHEKIT_SIGNING_KEY" in pickle.stderr
    no_redis = {k: v for k, v in env.items() if k != "CACHEKIT_REDIS_URL"}
    private = cachekit("stats", env=no_redis, cwd=tmp_path)
    assert private.returncode == 2
    assert "Pass --redis-url" in private.stderr
    assert (
        cachekit(
            "--redis-url", env["CACHEKIT_REDIS_URL"], "stats", env=no_redis, cwd=tmp_path
        ).returncode
        == 0
    )


def test_a_stopped_server_exits_3(
    redis_server: RedisServer, env: dict[str, str], tmp_path: Path
) -> None:
    redis_server.stop()
    result = cachekit("invalidate", "--tag", "team:a", env=env, cwd=tmp_path)
    assert result.returncode == 3
    assert "cannot be reached" in result.stderr


def test_help_lists_the_commands_and_exit_codes(env: dict[str, str], tmp_path: Path) -> None:
    result = cachekit("--help", env=env, cwd=tmp_path)
    assert result.returncode == 0
    for word in ("stats", "get", "inspect", "invalidate", "cleanup", "clear", "3 backend"):
        assert word in result.stdout
