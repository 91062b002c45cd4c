"""The chaos apps of this module: uvicorn servers started on first use, stopped after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_servers import RedisServers

from .runner import SHORT, ChaosApps


@pytest.fixture(scope="module")
def chaos_apps(redis_servers: RedisServers) -> Iterator[ChaosApps]:
    apps = ChaosApps(redis_servers, SHORT)
    try:
        yield apps
    finally:
        apps.close()
