"""What the Redis-backed sections share: availability checks and the raw redis-py floor."""

from __future__ import annotations

import functools
import importlib

import redis.asyncio as aioredis

from ..harness import Row, unavailable_row
from ..peers import TTL_SECONDS
from ..redis_server import redis_server_missing
from ..workload import Store

__all__ = ["backend_missing", "raw_store", "skipped_rows"]


def backend_missing(name: str) -> str | None:
    """Why fastapi_cachekit.backends.<name> cannot be used yet, or None."""
    module = f"fastapi_cachekit.backends.{name}"
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return f"{module} not available yet ({exc})"
    return None


def skipped_rows(section: str) -> list[Row] | None:
    """One "skipped" row when no redis-server can be started here, else None."""
    reason = redis_server_missing()
    if reason is None:
        return None
    return [unavailable_row(section, reason, status="skipped")]


async def raw_store(url: str) -> Store:
    """The floor: redis.asyncio GET / SET (with EX) of pre-encoded bytes."""
    client = aioredis.Redis.from_url(url)
    return Store(
        client.get,
        functools.partial(client.set, ex=TTL_SECONDS),
        client.aclose,
        raw=True,
        note="redis.asyncio, pre-encoded bytes",
    )
