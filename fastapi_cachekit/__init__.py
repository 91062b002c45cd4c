"""fastapi-cachekit: an async cache kit for FastAPI with memory, Redis and hybrid backends."""

from .backends.base import BackendStats, CacheBackend
from .backends.memory import MemoryBackend
from .decorators import CachedFunction, NotInKey, cached
from .errors import (
    BackendError,
    BackendUnavailable,
    CacheError,
    ConfigurationError,
    InvalidKeyError,
    InvalidTTLError,
    KeyBuildError,
    SerializationError,
    TamperedValueError,
)
from .events import CacheEvent, CacheObserver
from .factory import create_cache
from .fastapi.admin import admin_router
from .fastapi.dependencies import get_cache, setup_cache
from .fastapi.middleware import CacheMiddleware
from .fastapi.routes import cached_route
from .models import CacheEntry, CacheKey, CacheStats
from .serialization import Codec
from .service import CacheService
from .settings import CacheSettings
from .ttl import DEFAULT_TTL

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_TTL",
    "BackendError",
    "BackendStats",
    "BackendUnavailable",
    "CacheBackend",
    "CacheEntry",
    "CacheError",
    "CacheEvent",
    "CacheKey",
    "CacheMiddleware",
    "CacheObserver",
    "CacheService",
    "CacheSettings",
    "CacheStats",
    "CachedFunction",
    "Codec",
    "ConfigurationError",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyBuildError",
    "MemoryBackend",
    "NotInKey",
    "SerializationError",
    "TamperedValueError",
    "admin_router",
    "cached",
    "cached_route",
    "create_cache",
    "get_cache",
    "setup_cache",
]
