"""Request keys, include/exclude path globs, and invalidation targets (RFC 9111 §2, §4.4).

The default key is a pure function of (scheme, host, path, raw query string): the scheme and
host are lowercased and a default port dropped, the path is percent-encoded again (so a
decoded `?` cannot pose as a query), query parameters are decoded and sorted by name (the
values of a repeated name keep their order), and the canonical URL is hashed with BLAKE2b to
32 hex characters, the same in every process and after restarts. GET and HEAD share a key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, quote_from_bytes, unquote, unquote_to_bytes, urljoin, urlsplit

from ...keys import GlobPattern
from .headers import Headers, header_values

__all__ = [
    "SAFE_METHODS",
    "PathFilter",
    "TargetURL",
    "canonical_query",
    "canonical_url",
    "invalidation_targets",
    "qualified_key",
    "request_key",
    "same_origin_reference",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that do not invalidate (RFC 9110 §9.2.1); every other method is unsafe (§4.4)."""

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/:@!$&'()*+,;=._~-]*")
_HOST_SAFE = "[]:!$&'()*+,;=-._~"
_PLAIN_HOST = re.compile(r"[a-z0-9\[\]:!$&'()*+,;=._~-]*")


def _host(scheme: str, host: str) -> str:
    host = host.strip().lower()
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and _DEFAULT_PORTS.get(scheme) == port:
        return name
    return host


def _encoded_host(host: str) -> str:
    """A Host header may hold anything; encoded, a `/` or `?` in it cannot pose as part of
    the path, so `Host: a/b` + `/c` and `Host: a` + `/b/c` keep apart."""
    if _PLAIN_HOST.fullmatch(host) is None:
        return quote(host, safe=_HOST_SAFE, errors="surrogateescape")
    return host


def canonical_query(query: bytes | str) -> str:
    """The query string with parameters decoded, sorted by name (stably) and re-encoded."""
    raw = query.encode("utf-8", "surrogateescape") if isinstance(query, str) else query
    pairs: list[tuple[bytes, bytes]] = []
    for part in raw.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            pairs.append((_decode(name), _decode(value)))
    pairs.sort(key=lambda pair: pair[0])
    return "&".join(f"{quote_from_bytes(n, '')}={quote_from_bytes(v, '')}" for n, v in pairs)


def _decode(component: bytes) -> bytes:
    return unquote_to_bytes(component.replace(b"+", b" "))


def canonical_url(scheme: str, host: str, path: str, query: bytes | str = b"") -> str:
    """The normalised URL a default key is made from (also the invalidation index's key)."""
    scheme = scheme.lower()
    if _PLAIN_PATH.fullmatch(path) is None:
        path = quote(path, safe=_PATH_SAFE, errors="surrogateescape")
    encoded_path = path or "/"
    query_text = canonical_query(query) if query else ""
    tail = f"?{query_text}" if query_text else ""
    return f"{scheme}://{_encoded_host(_host(scheme, host))}{encoded_path}{tail}"


@lru_cache(maxsize=4096)
def request_key(scheme: str, host: str, path: str, query: bytes | str = b"") -> str:
    """The default cache key of a request: a 32-character hash of its canonical URL.

    Memoised (a pure function of its arguments), so a hot URL's key costs a dict lookup.
    """
    text = canonical_url(scheme, host, path, query)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def qualified_key(key: str, fields: Sequence[tuple[bytes, Sequence[bytes]]]) -> str:
    """`key` narrowed by request inputs the response depends on: `key` itself when there are
    none, else `key` plus a hash of the inputs. Each input is a name and its values (none
    when absent); every piece is length-prefixed, so no two different inputs encode alike.
    """
    if not fields:
        return key
    blob = bytearray()
    for name, values in fields:
        blob += _piece(name) + _piece(str(len(values)).encode("ascii"))
        for value in values:
            blob += _piece(value)
    return f"{key}|p:{hashlib.blake2b(bytes(blob), digest_size=16).hexdigest()}"


def _piece(data: bytes) -> bytes:
    return str(len(data)).encode("ascii") + b":" + data


class TargetURL(NamedTuple):
    """A URL whose stored responses are to be removed, in the parts a key is made from."""

    scheme: str
    host: str
    path: str
    query: bytes

    @property
    def canonical(self) -> str:
        """The canonical URL (for a URL -> keys index)."""
        return canonical_url(self.scheme, self.host, self.path, self.query)

    @property
    def key(self) -> str:
        """The default request key of this URL."""
        return request_key(self.scheme, self.host, self.path, self.query)


def invalidation_targets(
    method: str,
    status: int,
    scheme: str,
    host: str,
    path: str,
    query: bytes | str,
    response_headers: Headers,
) -> list[TargetURL]:
    """URLs whose stored responses an unsafe request's non-error (2xx/3xx) response
    invalidates (RFC 9111 §4.4): the target URL, plus Location and Content-Location resolved
    against it when they are on the same origin. Empty for safe methods and errors."""
    if method.upper() in SAFE_METHODS or not 200 <= status < 400:
        return []
    target, base = _target_and_base(scheme, host, path, query)
    targets = [target]
    for name in (b"location", b"content-location"):
        for value in header_values(response_headers, name)[:1]:
            resolved = _resolve(base, value.decode("latin-1").strip(), target)
            if resolved is not None and resolved not in targets:
                targets.append(resolved)
    return targets


def same_origin_reference(
    scheme: str, host: str, path: str, query: bytes | str, reference: bytes
) -> TargetURL | None:
    """The URL a reference (a Location or Content-Location value) names, resolved against the
    request's; None when it is on another origin or is not a URL."""
    target, base = _target_and_base(scheme, host, path, query)
    return _resolve(base, reference.decode("latin-1").strip(), target)


def _target_and_base(
    scheme: str, host: str, path: str, query: bytes | str
) -> tuple[TargetURL, str]:
    """The request's URL in parts, and as the base that references resolve against."""
    raw_query = query if isinstance(query, bytes) else query.encode("utf-8", "surrogateescape")
    query_text = raw_query.decode("latin-1")
    target = TargetURL(scheme.lower(), _host(scheme.lower(), host), path, raw_query)
    base = f"{target.scheme}://{target.host}{quote(path, safe=_PATH_SAFE)}"
    return target, base + (f"?{query_text}" if query_text else "")


def _resolve(base: str, reference: str, target: TargetURL) -> TargetURL | None:
    if not reference:
        return None
    try:
        parts = urlsplit(urljoin(base, reference))
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme != target.scheme or _host(scheme, parts.netloc) != target.host:
        return None
    return TargetURL(scheme, target.host, unquote(parts.path) or "/", parts.query.encode("latin-1"))


@dataclass(frozen=True, slots=True)
class PathFilter:
    """Include/exclude lists of path globs where `*` matches any characters, `/` included.

    A path is allowed when it matches an include pattern (or there is no include list) and
    matches no exclude pattern. The client chooses the path, so matching is the kit's glob
    matcher, linear in the path's length whatever the patterns (a regex of `.*` runs
    backtracks: three stars against a 6 kB path held a worker for seconds).
    """

    include: tuple[GlobPattern, ...] | None
    exclude: tuple[GlobPattern, ...]

    @classmethod
    def compile(
        cls, include: Iterable[str] | None = None, exclude: Iterable[str] = ()
    ) -> PathFilter:
        """Build a filter; `include=None` allows every path not excluded."""
        included = None if include is None else tuple(map(_path_glob, include))
        return cls(included, tuple(map(_path_glob, exclude)))

    def allows(self, path: str) -> bool:
        """True when requests to `path` may be cached."""
        if any(pattern.matches(path) for pattern in self.exclude):
            return False
        return self.include is None or any(pattern.matches(path) for pattern in self.include)


def _path_glob(pattern: str) -> GlobPattern:
    """A path pattern in the kit's glob dialect, where only `*` is special."""
    return GlobPattern.compile(_GLOB_SPECIALS.sub(r"\\\g<0>", pattern))


_GLOB_SPECIALS = re.compile(r"[\\?\[\]]")
