"""The Redis fixtures give real, isolated servers of our own."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.redis_servers import RedisServer, RedisServers

pytestmark = pytest.mark.redis


def test_single_node_answers_on_its_own_port(redis_url: str, clean_redis: RedisServers) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
        assert client.connection_pool.connection_kwargs["port"] != 6379
        assert client.dbsize() == 0
    finally:
        client.close()


def test_servers_are_flushed_between_tests(redis_url: str, clean_redis: RedisServers) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", "1")  # the next test's clean_redis removes it
    finally:
        client.close()


def test_cluster_has_three_masters(redis_cluster_url: str, clean_redis: RedisServers) -> None:
    client = redis.RedisCluster.from_url(redis_cluster_url)
    try:
        info = client.cluster_info()
        assert info["cluster_state"] == "ok"
        nodes: list[Any] = client.get_nodes()  # type: ignore[no-untyped-call]
        masters = [node for node in nodes if node.server_type == "primary"]
        assert len(masters) == 3
        assert all(node.port != 6379 for node in masters)
        for key in ("a", "b", "c", "d"):
            client.set(key, key)
        assert client.get("c") == b"c"
    finally:
        client.close()


def test_restart_keeps_the_port_and_loses_the_data(redis_server: RedisServer) -> None:
    redis_server.command("SET", "k", "v")
    port, pid = redis_server.port, redis_server.pid
    redis_server.stop()
    assert not redis_server.running
    redis_server.start()
    assert (redis_server.port, redis_server.running) == (port, True)
    assert redis_server.pid != pid
    assert redis_server.command("GET", "k") is None


def test_admin_commands_reach_the_server(redis_server: RedisServer) -> None:
    assert redis_server.command("CLIENT", "PAUSE", "10") in (True, b"OK")
    assert redis_server.command("DEBUG", "SLEEP", "0") in (True, b"OK")
