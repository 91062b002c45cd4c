"""The exceptions fastapi-cachekit raises: one root, a flat hierarchy."""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CacheError",
    "ConfigurationError",
    "InvalidKeyError",
    "InvalidTTLError",
    "KeyBuildError",
    "SerializationError",
    "TamperedValueError",
]


class CacheError(Exception):
    """Base class of every error raised by fastapi-cachekit."""


class ConfigurationError(CacheError):
    """A setting is missing or invalid; raised at startup, never at request time."""


class InvalidKeyError(CacheError, ValueError):
    """A key, namespace, tag or pattern passed to the cache is not acceptable."""


class InvalidTTLError(CacheError, ValueError):
    """A time-to-live is not a positive duration or None."""


class KeyBuildError(CacheError, TypeError):
    """A cache key could not be built from a function call's arguments."""


class SerializationError(CacheError):
    """A value could not be encoded for the cache, or stored bytes could not be decoded."""


class TamperedValueError(SerializationError):
    """Stored bytes failed their signature check and were refused."""


class BackendError(CacheError):
    """The storage backend failed an operation."""


class BackendUnavailable(BackendError):
    """The storage backend cannot be reached (down, timed out, or its circuit is open)."""
