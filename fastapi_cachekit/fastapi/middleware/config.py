"""CacheMiddleware's options: validated once, at construction, into the objects requests use.

Every mistake raises ConfigurationError when the middleware is built (at app start-up), with
a message that says what to pass instead; nothing here runs per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from starlette.requests import Request

from ...errors import ConfigurationError, InvalidKeyError, InvalidTTLError
from ...keys import check_namespace, check_tags
from ...service import CacheService
from ...ttl import ttl_seconds
from ..http import DEFAULT_PRIVATE_REQUEST_HEADERS, CachePolicy, CacheStatus, PathFilter

__all__ = [
    "Clock",
    "KeyFunc",
    "MiddlewareConfig",
    "TagsFunc",
    "check_max_variants",
    "configure",
]

KeyFunc = Callable[[Request], str]
TagsFunc = Callable[[Request], Iterable[str]]
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class MiddlewareConfig:
    """The validated options of one CacheMiddleware."""

    policy: CachePolicy
    paths: PathFilter | None
    """None when every path is cached (no include/exclude given): the hit path skips it."""
    cache: CacheService | None
    namespace: str
    key_func: KeyFunc | None
    tags_func: TagsFunc | None
    single_flight: bool
    status: CacheStatus
    clock: Clock
    max_variants: int
    send_date: bool
    """False when the server adds Date to every response: hits then leave the stored one out."""


def configure(
    *,
    ttl: float | timedelta | None,
    include: Iterable[str] | None,
    exclude: Iterable[str] | None,
    cache: CacheService | None,
    namespace: str,
    key_func: KeyFunc | None,
    tags_func: TagsFunc | None,
    max_body_bytes: int | None,
    cache_authorized: bool,
    store_set_cookie: bool,
    private_request_headers: Iterable[str | bytes] | None,
    cache_private_requests: bool,
    respect_request_cache_control: bool,
    single_flight: bool,
    cache_status_name: str,
    clock: Clock,
    max_variants: int,
    keep_stale: float | timedelta = 600.0,
    serve_stale_on_error: float | timedelta | None = None,
    server_date: bool = True,
) -> MiddlewareConfig:
    """Check every option and build the middleware's configuration (ConfigurationError)."""
    if cache is not None and not isinstance(cache, CacheService):
        raise ConfigurationError(f"cache must be a CacheService, got {type(cache).__name__}")
    for name, func in (("key_func", key_func), ("tags_func", tags_func), ("clock", clock)):
        if func is not None and not callable(func):
            raise ConfigurationError(f"{name} must be callable, got {type(func).__name__}")
    policy = CachePolicy(
        ttl=_ttl(ttl),
        max_body_bytes=max_body_bytes,
        store_set_cookie=bool(store_set_cookie),
        cache_authorized=bool(cache_authorized),
        private_request_headers=_field_names(private_request_headers),
        cache_private_requests=bool(cache_private_requests),
        respect_request_cache_control=bool(respect_request_cache_control),
        keep_stale=_seconds("keep_stale", keep_stale),
        stale_on_error=_stale_on_error(serve_stale_on_error),
    )
    return MiddlewareConfig(
        policy=policy,
        paths=_paths(include, exclude),
        cache=cache,
        namespace=_namespace(namespace),
        key_func=key_func,
        tags_func=tags_func,
        single_flight=bool(single_flight),
        status=CacheStatus(cache_status_name),
        clock=clock,
        max_variants=check_max_variants(max_variants),
        send_date=not server_date,
    )


def check_max_variants(max_variants: Any) -> int:
    """The number of Vary variants kept per URL: a positive int (ConfigurationError)."""
    if isinstance(max_variants, bool) or not isinstance(max_variants, int) or max_variants < 1:
        raise ConfigurationError(
            f"max_variants must be a positive int (variants kept per URL), got {max_variants!r}"
        )
    return max_variants


def _ttl(ttl: Any) -> float | None:
    try:
        return ttl_seconds(ttl)
    except InvalidTTLError as exc:
        raise ConfigurationError(
            f"{exc} (or leave ttl out to store only responses that state their own freshness)"
        ) from exc


def _seconds(option: str, value: Any) -> float:
    """A window of seconds (int, float or timedelta) within the TTL bounds, or 0 for none."""
    if not isinstance(value, bool) and value in (0, timedelta(0)):
        return 0.0
    try:
        seconds = ttl_seconds(value)
    except InvalidTTLError as exc:
        raise ConfigurationError(f"{option}: {exc}; 0 turns it off") from exc
    if seconds is None:
        raise ConfigurationError(f"{option} must be seconds or a timedelta (0: off), not None")
    return seconds


def _stale_on_error(window: Any) -> float:
    """The serve_stale_on_error window; 0 (off) for None."""
    if window is None:
        return 0.0
    if window is True or window is False:
        raise ConfigurationError(
            "serve_stale_on_error takes the longest staleness to serve on an error, "
            f"e.g. serve_stale_on_error=300 (seconds) or a timedelta, got {window!r}"
        )
    return _seconds("serve_stale_on_error", window)


def _strings(option: str, values: Any) -> list[str]:
    """A list of str from an iterable option; a bare string is refused (a common slip)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ConfigurationError(f"{option} must be a list of strings, e.g. {option}=[...]")
    items = list(values)
    for item in items:
        if not isinstance(item, str):
            raise ConfigurationError(f"{option} must hold strings, got {item!r}")
    return items


def _paths(include: Any, exclude: Any) -> PathFilter | None:
    if include is None and not exclude:
        return None
    included = None if include is None else _strings("include", include)
    excluded = _strings("exclude", exclude) if exclude else []
    return PathFilter.compile(included, excluded)


def _field_names(names: Any) -> frozenset[bytes]:
    if names is None:
        return DEFAULT_PRIVATE_REQUEST_HEADERS
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise ConfigurationError(
            "private_request_headers must be a list of header names, e.g. ['Cookie']"
        )
    fields: set[bytes] = set()
    for name in names:
        raw = name.encode("ascii", "replace") if isinstance(name, str) else name
        if not isinstance(raw, bytes) or not raw or not raw.isascii() or b" " in raw:
            raise ConfigurationError(f"{name!r} is not a header name")
        fields.add(raw.lower())
    return frozenset(fields)


def _namespace(namespace: Any) -> str:
    try:
        checked = check_namespace(namespace)
        # The middleware tags entries with the namespace; those tags must be valid too.
        check_tags([f"{checked}:url:{'0' * 32}"])
    except InvalidKeyError as exc:
        raise ConfigurationError(f"namespace: {exc}") from exc
    return checked
