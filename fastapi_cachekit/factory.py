"""create_cache: the spec's `compose.cache(...)`, settings in, a ready CacheService out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from .backends.base import CacheBackend
from .backends.memory import MemoryBackend
from .errors import ConfigurationError
from .events import CacheObserver
from .serialization import make_codec
from .service import CacheService
from .settings import CacheSettings, load_settings

__all__ = ["BACKENDS", "create_backend", "create_cache"]


def create_cache(
    settings: CacheSettings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    observers: CacheObserver | Iterable[CacheObserver] | None = None,
    **overrides: Any,
) -> CacheService:
    """A CacheService configured from `settings` (default: the environment) and overrides.

    `create_cache(backend="memory", max_memory_items=1000, default_ttl_seconds=3600)`.
    Raises ConfigurationError naming the setting at fault and how to fix it. The backend
    connects lazily, on first use. `observers` hear the service's events (`events.py`).
    """
    config = load_settings(settings, **overrides)
    signing_key = config.signing_key.get_secret_value() if config.signing_key else None
    return CacheService(
        create_backend(config, clock=clock),
        codec=make_codec(
            config.serializer,
            signing_key,
            compression=config.compression,
            compression_threshold_bytes=config.compression_threshold_bytes,
        ),
        default_ttl=config.default_ttl_seconds,
        default_namespace=config.default_namespace,
        enable_stats=config.enable_stats,
        cleanup_interval=config.cleanup_interval_seconds or None,
        stats_flush_interval=config.stats_flush_interval_seconds,
        fill_lock_timeout=config.fill_lock_timeout_seconds or None,
        admin_token=config.admin_token,
        enabled=config.enabled,
        observers=observers,
    )


Clock = Callable[[], float]
BackendBuilder = Callable[[CacheSettings, Clock], CacheBackend]


def _memory(settings: CacheSettings, clock: Clock) -> CacheBackend:
    return MemoryBackend(
        settings.max_memory_items, max_memory_bytes=settings.max_memory_bytes, clock=clock
    )


def _redis(settings: CacheSettings, clock: Clock) -> CacheBackend:
    from .backends.redis import RedisBackend  # imported on demand: memory users skip redis-py

    return RedisBackend.from_settings(settings, clock=clock)


def _hybrid(settings: CacheSettings, clock: Clock) -> CacheBackend:
    from .backends.hybrid import HybridBackend

    return HybridBackend.from_settings(settings, clock=clock)


BACKENDS: dict[str, BackendBuilder] = {"memory": _memory, "redis": _redis, "hybrid": _hybrid}
"""The registry of backends by `settings.backend` name: a new backend adds its builder here
(and its name to `settings.BackendName`)."""


def create_backend(settings: CacheSettings, *, clock: Clock = time.time) -> CacheBackend:
    """The backend named by `settings.backend`."""
    try:
        build = BACKENDS[settings.backend]
    except KeyError:
        raise ConfigurationError(
            f"unknown backend {settings.backend!r}; choose one of {sorted(BACKENDS)}"
        ) from None
    return build(settings, clock)
