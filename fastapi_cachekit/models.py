"""The spec's domain models: CacheKey, CacheEntry and CacheStats."""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from .keys import bind_arguments, full_key, function_call_key, not_in_key

__all__ = ["CacheEntry", "CacheKey", "CacheStats", "utc_from_timestamp"]


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def utc_from_timestamp(seconds: float) -> datetime:
    """A UTC datetime from seconds since the epoch."""
    return datetime.fromtimestamp(seconds, timezone.utc)


class CacheKey(BaseModel):
    """A cache key with the metadata used to organise and invalidate it."""

    key: str
    namespace: str | None = None
    tags: list[str] = Field(default_factory=list)

    @property
    def full_key(self) -> str:
        """`"{namespace}:{key}"`, or just `key` when there is no namespace."""
        return full_key(self.key, self.namespace)

    @classmethod
    def from_function_call(
        cls,
        func: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
        tags: list[str] | None = None,
        exclude: tuple[str, ...] = (),
    ) -> CacheKey:
        """The key of one call of `func`: its module, qualified name and bound arguments,
        without `exclude` and the parameters annotated `Annotated[T, NotInKey]` (the key
        `@cached` uses, when that resolves the same annotations)."""
        arguments = bind_arguments(func, args, dict(kwargs or {}))
        try:
            hints = typing.get_type_hints(func, include_extras=True)
        except (NameError, TypeError):  # annotations naming what func's module lacks
            hints = {}
        key = function_call_key(func, arguments, frozenset(exclude) | not_in_key(hints))
        return cls(key=key, namespace=namespace, tags=list(tags or []))


class CacheEntry(BaseModel):
    """A cached value with its metadata; times are UTC."""

    key: CacheKey
    value: Any
    created_at: datetime = Field(default_factory=_utcnow)
    expires_at: datetime | None = None
    hit_count: int = 0
    last_accessed: datetime = Field(default_factory=_utcnow)

    @property
    def is_expired(self) -> bool:
        """True once the expiration time has passed (never, without one)."""
        return self.expires_at is not None and self.expires_at <= _utcnow()

    def touch(self) -> None:
        """Record an access: bump the hit count and the last access time."""
        self.hit_count += 1
        self.last_accessed = _utcnow()


class CacheStats(BaseModel):
    """Statistics about cache performance."""

    total_entries: int
    total_hits: int
    total_misses: int
    hit_rate: float = Field(ge=0.0, le=1.0)
    memory_usage_bytes: int | None = None
    oldest_entry: datetime | None = None
    newest_entry: datetime | None = None
    errors: int = 0
    pending_invalidations: int = 0
    bypasses: int = Field(
        0, description="Reads and writes skipped because the cache was turned off."
    )
