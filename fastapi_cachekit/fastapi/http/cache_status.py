"""Cache-Status field values (RFC 9211): one list member describing what this cache did.

`CacheStatus(name)` is built once (the name is serialised then); `hit(ttl)` on the hit path is
a concatenation of precomputed bytes.
"""

from __future__ import annotations

import re

from ...errors import ConfigurationError

__all__ = ["DEFAULT_CACHE_NAME", "FORWARD_REASONS", "CacheStatus"]

DEFAULT_CACHE_NAME = "fastapi-cachekit"

FORWARD_REASONS = frozenset(
    {"bypass", "method", "uri-miss", "vary-miss", "miss", "request", "stale", "partial"}
)
"""The `fwd` parameter values RFC 9211 §2.2 defines."""

_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _item(value: str) -> bytes:
    """A Structured Field Token when `value` is one, else a String (RFC 8941 §3.3.3-4)."""
    if _TOKEN.fullmatch(value):
        return value.encode("ascii")
    if not _PRINTABLE.fullmatch(value):
        raise ConfigurationError(
            f"Cache-Status value {value!r} must be printable ASCII (RFC 8941 strings)"
        )
    return b'"' + value.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'


class CacheStatus:
    """Builds this cache's Cache-Status member, e.g. `fastapi-cachekit; hit; ttl=42`."""

    __slots__ = ("_hit", "_name", "hit_without_ttl", "name")

    def __init__(self, name: str = DEFAULT_CACHE_NAME) -> None:
        if not name:
            raise ConfigurationError("the Cache-Status cache name must not be empty")
        self.name = name
        self._name = _item(name)
        self._hit = self._name + b"; hit; ttl="
        self.hit_without_ttl = self._name + b"; hit"
        """A hit whose remaining freshness this cache does not know (@cached_route's)."""

    def hit(self, ttl: int) -> bytes:
        """A response served from the cache; `ttl` is its remaining freshness (negative when a
        stale response was served)."""
        return self._hit + str(ttl).encode("ascii")

    def forward(
        self,
        fwd: str,
        *,
        fwd_status: int | None = None,
        ttl: int | None = None,
        stored: bool = False,
        collapsed: bool = False,
        detail: str | None = None,
    ) -> bytes:
        """A request the cache sent to the app: `fwd` says why (`uri-miss`, `vary-miss`,
        `stale`, `request`, `bypass`, `method`, ...), `fwd_status` what the app answered,
        `stored` whether the response was stored, `collapsed` whether it was shared with other
        waiting requests (single flight)."""
        if fwd not in FORWARD_REASONS:
            raise ValueError(f"fwd must be one of {sorted(FORWARD_REASONS)}, got {fwd!r}")
        parts = [self._name, b"fwd=" + fwd.encode("ascii")]
        if fwd_status is not None:
            parts.append(b"fwd-status=%d" % fwd_status)
        if ttl is not None:
            parts.append(b"ttl=%d" % ttl)
        if stored:
            parts.append(b"stored")
        if collapsed:
            parts.append(b"collapsed")
        if detail is not None:
            parts.append(b"detail=" + _item(detail))
        return b"; ".join(parts)

    def detail(self, detail: str) -> bytes:
        """A response the cache made without a hit or a forward, e.g. `detail=only-if-cached`
        for a 504."""
        return self._name + b"; detail=" + _item(detail)

    def __repr__(self) -> str:
        return f"CacheStatus({self.name!r})"
