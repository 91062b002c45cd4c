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
from .factory import create_cache
from .models import CacheEntry, CacheKey, CacheStats
from .service import DEFAULT_TTL, CacheService
from .settings import CacheSettings

__all__ = [
    "DEFAULT_TTL",
    "BackendError",
    "BackendStats",
    "BackendUnavailable",
    "CacheBackend",
    "CacheEntry",
    "CacheError",
    "CacheKey",
    "CacheService",
    "CacheSettings",
    "CacheStats",
    "CachedFunction",
    "ConfigurationError",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyBuildError",
    "MemoryBackend",
    "NotInKey",
    "SerializationError",
    "TamperedValueError",
    "cached",
    "create_cache",
]
