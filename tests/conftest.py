"""Shared fixtures: real redis-server processes (tests/redis_servers.py) and backends, and the
kit's own pytest plugin (fastapi_cachekit/testing.py), loaded from this checkout."""

pytest_plugins = ("tests.redis_servers", "fastapi_cachekit.testing")
