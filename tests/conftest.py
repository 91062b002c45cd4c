"""Shared fixtures: real redis-server processes (tests/redis_servers.py) and backends."""

pytest_plugins = ("tests.redis_servers",)
