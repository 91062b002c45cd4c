"""CacheSettings: every knob of the kit, validated, read from CACHEKIT_* variables and .env."""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError

__all__ = [
    "MIN_ADMIN_TOKEN_LENGTH",
    "BackendName",
    "CacheSettings",
    "check_admin_token",
    "load_settings",
]

BackendName = Literal["memory", "redis", "hybrid"]

# A bearer token is the admin API's only lock: short ones can be guessed.
MIN_ADMIN_TOKEN_LENGTH = 16


class CacheSettings(BaseSettings):
    """Configuration of a cache service; each field is read from `CACHEKIT_<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="CACHEKIT_", env_file=".env", extra="ignore", validate_default=True
    )

    # The spec's table.
    backend: BackendName = Field("memory", description="Cache backend type.")
    default_ttl_seconds: int = Field(3600, gt=0, description="TTL used when `ttl` is omitted.")
    default_namespace: str | None = Field(None, description="Namespace used when none is given.")
    redis_url: str | None = Field(None, description="Redis URL (required for redis and hybrid).")
    max_memory_items: int = Field(1000, ge=1, description="Entries kept in memory (LRU).")
    enable_stats: bool = Field(True, description="Count hits and misses.")

    # Beyond the spec.
    enabled: bool = Field(
        True, description="False turns the cache off: factories run, nothing is stored."
    )
    max_memory_bytes: int | None = Field(
        256 * 1024 * 1024,
        ge=1,
        description="Bytes the memory backend (and the hybrid L1) may hold, by the estimate "
        "in stats; past it the least recently used entries go, and a value bigger on its own "
        "is not stored. None: no byte bound.",
    )
    key_prefix: str = Field(
        "cachekit", min_length=1, description="Prefix of every key this kit writes to Redis."
    )
    serializer: Literal["json", "msgpack", "pickle"] = Field(
        "json",
        description="Value codec; msgpack needs the `msgpack` extra, pickle `signing_key`. "
        "JSON and msgpack caches read each other's values.",
    )
    compression: Literal["none", "zlib"] = Field(
        "none",
        description="Compress encoded values of `compression_threshold_bytes` or more. Each "
        "value records its algorithm, so changing this never makes stored values unreadable.",
    )
    compression_threshold_bytes: int = Field(
        1024, ge=0, description="Smallest encoded value that `compression` compresses."
    )
    signing_key: SecretStr | None = Field(
        None, description="HMAC key that signs pickled values (required with pickle)."
    )
    cleanup_interval_seconds: float = Field(
        60.0, ge=0, description="Period of the background expiry sweep; 0 turns it off."
    )
    redis_cluster: bool = Field(False, description="Connect to a Redis Cluster.")
    redis_connect_timeout_seconds: float = Field(0.5, gt=0, description="Redis connect timeout.")
    redis_socket_timeout_seconds: float = Field(0.5, gt=0, description="Redis command timeout.")
    redis_max_connections: int = Field(64, ge=1, description="Size of the Redis connection pool.")
    breaker_max_backoff_seconds: float = Field(
        5.0, gt=0, description="Longest pause before probing an unreachable Redis again."
    )
    max_pending_invalidations: int = Field(
        1000, ge=1, description="Invalidations queued while Redis is down before a full clear."
    )
    stats_flush_interval_seconds: float = Field(
        1.0, gt=0, description="How often hit/miss counts are flushed to a shared backend."
    )
    fill_lock_timeout_seconds: float = Field(
        10.0,
        ge=0,
        description="Shared backends: while one process computes a missing entry, others "
        "wait up to this long for its result before computing it themselves; 0 turns it off.",
    )
    l1_max_ttl_seconds: float = Field(
        60.0, gt=0, description="Hybrid: the longest an entry lives in a process's memory tier."
    )
    l1_liveness_seconds: float = Field(
        3.0,
        gt=0,
        description="Hybrid: how long the invalidation channel may stay silent (Redis stalled) "
        "before the memory tier is bypassed; it is pinged every third of this.",
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token that protects the admin router."
    )

    @field_validator("admin_token")
    @classmethod
    def _check_admin_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None:
            check_admin_token(token.get_secret_value())
        return token

    @model_validator(mode="after")
    def _check_combinations(self) -> CacheSettings:
        if self.backend in ("redis", "hybrid") and not self.redis_url:
            raise ValueError(
                f"backend={self.backend!r} needs redis_url "
                "(set CACHEKIT_REDIS_URL, e.g. redis://localhost:6379/0)"
            )
        if self.serializer == "pickle" and self.signing_key is None:
            raise ValueError(
                "serializer='pickle' needs signing_key (set CACHEKIT_SIGNING_KEY to a long "
                "random secret), so that tampered values are refused instead of unpickled"
            )
        if self.signing_key is not None and len(self.signing_key.get_secret_value()) < 16:
            raise ValueError(
                "signing_key (CACHEKIT_SIGNING_KEY) must be at least 16 characters of secret"
            )
        return self


def check_admin_token(token: str) -> str:
    """Return `token` if it can protect the admin router, else raise ValueError saying why.

    An empty one is refused above all: an unset `${VAR}` in a compose file gives "", and a
    router guarded by "" would open to `Authorization: Bearer ` with nothing after it.
    """
    fix = (
        "use a long random secret (python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
        "or leave CACHEKIT_ADMIN_TOKEN unset and protect the admin router with dependencies"
    )
    if not token.strip():
        raise ValueError(f"the admin token is empty; {fix}")
    if any(char.isspace() for char in token):
        raise ValueError(f"the admin token contains whitespace; {fix}")
    if len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise ValueError(
            f"the admin token is {len(token)} characters long, shorter than the minimum of "
            f"{MIN_ADMIN_TOKEN_LENGTH}; {fix}"
        )
    return token


def load_settings(settings: CacheSettings | None = None, **overrides: Any) -> CacheSettings:
    """Build settings from the environment (or `settings`) plus overrides, or raise
    ConfigurationError naming what is wrong and how to fix it."""
    unknown = sorted(set(overrides) - set(CacheSettings.model_fields))
    if unknown:
        raise ConfigurationError("; ".join(_unknown_setting(name) for name in unknown))
    try:
        if settings is None:
            return CacheSettings(**overrides)
        if not overrides:
            return settings
        merged = settings.model_dump() | overrides
        return CacheSettings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc)) from None


def _unknown_setting(name: str) -> str:
    close = difflib.get_close_matches(name, CacheSettings.model_fields, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown cache setting {name!r}{hint}"


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "settings"
        env = f" (CACHEKIT_{field.upper()})" if error["loc"] else ""
        problems.append(f"{field}{env}: {error['msg']}")
    return "invalid cache configuration: " + "; ".join(problems)
