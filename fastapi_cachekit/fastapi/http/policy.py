"""CachePolicy: the middleware's HTTP caching options, validated once, read by every rule."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import ConfigurationError, InvalidTTLError
from ...ttl import ttl_seconds

__all__ = [
    "DEFAULT_CACHEABLE_STATUSES",
    "DEFAULT_PRIVATE_REQUEST_HEADERS",
    "UNDERSTOOD_STATUSES",
    "CachePolicy",
]

DEFAULT_CACHEABLE_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
"""Heuristically cacheable statuses (RFC 9110 §15.1, without 206: ranges are not cached)."""

DEFAULT_PRIVATE_REQUEST_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"cookie", b"x-api-key"}
)
"""Request fields that mark a request as personal in `ttl` mode."""

UNDERSTOOD_STATUSES = frozenset(
    {200, 201, 202, 203, 204, 300, 301, 302, 303, 307, 308}
    | {400, 401, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417}
    | {421, 422, 426, 500, 501, 502, 503, 504, 505}
)
"""Final statuses whose caching requirements this cache implements (`must-understand`, §5.2.2.3).
206 and 304 are missing on purpose: partial content is not stored, 304s only freshen."""


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How the shared cache treats responses; built once when the middleware is created.

    - `ttl`: seconds of freshness given to responses that state none ("ttl mode"); None
      stores only responses with explicit or heuristic freshness. Never overrides the response.
    - `cacheable_statuses`: statuses stored without explicit freshness (others need it).
    - `heuristic_fraction`, `max_heuristic_lifetime`: heuristic freshness from Last-Modified.
    - `max_body_bytes`: larger bodies are not stored (None: no limit).
    - `store_set_cookie`: store responses that carry `Set-Cookie` (off: safety over RFC).
    - `cache_authorized`: store/serve for requests with `Authorization` regardless of §3.5
      (and of the ttl-mode rule below).
    - `private_request_headers`: in ttl mode, requests carrying any of these (lowercase names)
      are neither served nor stored unless the response is `public`/`s-maxage`...
    - `cache_private_requests`: ...or this opt-in is set.
    - `respect_request_cache_control`: obey request directives and Pragma (off: clients cannot
      force origin hits).
    - `keep_stale`: seconds a stale response is kept while it can still be used: revalidated
      with a conditional request (it has validators), served to a request's `max-stale`
      (request directives respected), or served on an app failure (`stale_on_error`).
    - `stale_on_error`: seconds of staleness within which a stored response replaces an app
      failure (a 5xx or an exception) even without `stale-if-error`, unless `no-cache`,
      `must-revalidate`, `proxy-revalidate` or `s-maxage` forbid it (0: off).
    """

    ttl: float | None = None
    cacheable_statuses: frozenset[int] = DEFAULT_CACHEABLE_STATUSES
    heuristic_fraction: float = 0.1
    max_heuristic_lifetime: float = 86400.0
    max_body_bytes: int | None = 1 << 20
    store_set_cookie: bool = False
    cache_authorized: bool = False
    private_request_headers: frozenset[bytes] = DEFAULT_PRIVATE_REQUEST_HEADERS
    cache_private_requests: bool = False
    respect_request_cache_control: bool = False
    keep_stale: float = 600.0
    stale_on_error: float = 0.0
    personal_fields: frozenset[bytes] = field(init=False, repr=False, compare=False)
    """Derived: the fields that make a request personal under these options (empty unless in
    ttl mode without `cache_private_requests`; without Authorization if `cache_authorized`)."""
    lookup_fields: frozenset[bytes] = field(init=False, repr=False, compare=False)
    """Derived: the request fields a lookup looks at (the hit path scans for these only)."""

    def __post_init__(self) -> None:
        try:
            ttl_seconds(self.ttl)
        except InvalidTTLError as exc:
            raise ConfigurationError(str(exc)) from exc
        if not 0 <= self.heuristic_fraction <= 1:
            raise ConfigurationError("heuristic_fraction must be between 0 and 1")
        if min(self.max_heuristic_lifetime, self.keep_stale, self.stale_on_error) < 0:
            raise ConfigurationError(
                "max_heuristic_lifetime, keep_stale and stale_on_error must not be negative"
            )
        size = self.max_body_bytes
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ConfigurationError(
                f"max_body_bytes must be None or a non-negative int (bytes), got {size!r}"
            )
        names = frozenset(name.lower() for name in self.private_request_headers)
        object.__setattr__(self, "private_request_headers", names)
        personal = names if self.ttl_mode and not self.cache_private_requests else frozenset()
        if self.cache_authorized:
            personal -= {b"authorization"}
        object.__setattr__(self, "personal_fields", personal)
        fields = _ALWAYS_LOOKED_AT | personal
        if self.respect_request_cache_control:
            fields |= {b"cache-control", b"pragma"}
        object.__setattr__(self, "lookup_fields", fields)

    @property
    def ttl_mode(self) -> bool:
        """True when the middleware fills missing freshness with `ttl`."""
        return self.ttl is not None


_ALWAYS_LOOKED_AT = frozenset({b"authorization", b"if-none-match", b"if-modified-since"})
