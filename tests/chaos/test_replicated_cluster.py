"""The replicated cluster fixture: 3 masters, each with one replica in sync."""

from __future__ import annotations

import pytest

from tests.redis_servers import RedisServer

pytestmark = pytest.mark.redis


def test_every_master_has_one_linked_replica(redis_replicated_cluster: list[RedisServer]) -> None:
    roles = {node.port: node.command("INFO", "replication") for node in redis_replicated_cluster}
    masters = [port for port, info in roles.items() if info["role"] == "master"]
    replicas = [info for info in roles.values() if info["role"] == "slave"]
    assert len(masters) == 3
    assert sorted(info["master_port"] for info in replicas) == sorted(masters)
    assert all(info["master_link_status"] == "up" for info in replicas)
