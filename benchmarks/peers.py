"""In-memory stores under test: the floor, fastapi-cachekit, and the peers, as `Store`s.

Each peer is used the way its users would: its own value API with its default serializer and
a per-entry TTL. Where a peer has no async value API (cachetools) or works on bytes only
(fastapi-cache2's backends, whose `@cache` runs its JsonCoder), a thin adapter supplies it.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from .workload import Store

__all__ = ["MEMORY_STORES", "TTL_SECONDS", "StoreFactory"]

TTL_SECONDS = 3600
StoreFactory = Callable[[int], Awaitable[Store]]


class DictFloor:
    """The floor: a bare dict behind `async def` get/set."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    async def get(self, key: str) -> Any:
        return self._data.get(key)

    async def set(self, key: str, value: Any) -> None:
        self._data[key] = value


class CachetoolsAsync:
    """cachetools' TTLCache behind `async def` get/set (it has no async API of its own)."""

    def __init__(self, size: int) -> None:
        from cachetools import TTLCache

        self._cache: TTLCache[str, Any] = TTLCache(maxsize=size, ttl=TTL_SECONDS)

    async def get(self, key: str) -> Any:
        return self._cache.get(key)

    async def set(self, key: str, value: Any) -> None:
        self._cache[key] = value


class FastAPICache2Values:
    """A fastapi-cache2 backend with its JsonCoder, as its `@cache` decorator uses them."""

    def __init__(self, backend: Any) -> None:
        from fastapi_cache.coder import JsonCoder

        self._backend = backend
        self._coder = JsonCoder

    async def get(self, key: str) -> Any:
        data = await self._backend.get(key)
        return None if data is None else self._coder.decode(data)

    async def set(self, key: str, value: Any) -> None:
        await self._backend.set(key, self._coder.encode(value), expire=TTL_SECONDS)


async def floor_store(size: int) -> Store:
    floor = DictFloor()
    return Store(floor.get, floor.set, note="a dict behind async def get/set")


async def cachekit_store(size: int) -> Store:
    from fastapi_cachekit import create_cache

    service = create_cache(
        backend="memory",
        max_memory_items=max(size, 1000),
        default_ttl_seconds=TTL_SECONDS,
        enable_stats=True,
        serializer="json",
    )
    return Store(
        service.get,
        service.set,
        service.close,
        note="defaults: per-entry TTL, stats, JSON copy",
    )


async def cachekit_backend_store(size: int) -> Store:
    from fastapi_cachekit import MemoryBackend

    backend = MemoryBackend(max(size, 1000))
    set_ = functools.partial(backend.set, ttl=float(TTL_SECONDS), namespace=None, tags=())
    return Store(
        backend.get,
        set_,
        backend.close,
        raw=True,
        note="the backend alone, pre-encoded bytes",
    )


async def cachetools_store(size: int) -> Store:
    cache = CachetoolsAsync(size)
    return Store(cache.get, cache.set, note="in an async def wrapper")


async def cashews_store(size: int) -> Store:
    from cashews import Cache

    cache = Cache()
    cache.setup(f"mem://?size={max(size, 1000)}")
    return Store(cache.get, functools.partial(cache.set, expire=TTL_SECONDS), cache.close)


async def aiocache_store(size: int) -> Store:
    from aiocache import SimpleMemoryCache  # type: ignore[import-untyped]

    cache = SimpleMemoryCache(ttl=TTL_SECONDS)

    async def close() -> None:
        await cache.clear()
        await cache.close()

    return Store(cache.get, cache.set, close)


async def fastapi_cache2_store(size: int) -> Store:
    from fastapi_cache.backends.inmemory import InMemoryBackend

    cache = FastAPICache2Values(InMemoryBackend())
    return Store(cache.get, cache.set, note="with its JsonCoder, as @cache uses it")


# (row name, factory); the first one is the floor.
MEMORY_STORES: list[tuple[str, StoreFactory]] = [
    ("floor: dict", floor_store),
    ("cachekit CacheService", cachekit_store),
    ("cachekit MemoryBackend (bytes)", cachekit_backend_store),
    ("cachetools TTLCache", cachetools_store),
    ("cashews mem://", cashews_store),
    ("aiocache SimpleMemoryCache", aiocache_store),
    ("fastapi-cache2 InMemoryBackend", fastapi_cache2_store),
]
