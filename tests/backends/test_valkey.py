"""The Valkey backend kinds run on a real Valkey server, not on Redis under another name (the
contract suite runs on it: kinds "valkey" and "hybrid-valkey" in tests/backend_kinds.py)."""

from __future__ import annotations

import pytest
import redis

pytestmark = pytest.mark.redis


def test_the_valkey_fixture_is_a_valkey_server(valkey_server_url: str) -> None:
    client = redis.Redis.from_url(valkey_server_url)
    try:
        info = client.info("server")
    finally:
        client.close()
    assert info.get("server_name") == "valkey"
    assert int(str(info["valkey_version"]).split(".")[0]) >= 8
