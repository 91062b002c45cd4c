"""CacheMiddleware: the ASGI I/O around the pure RFC 9111 rules of `fastapi.http`.

Modules: `cache_middleware` (the entry point: lookup, serve, or forward), `asgi` (messages
and request state), `config` (options checked once), `fetch` (running the app and judging
its answer), `relay` (that answer on its way to the client and the store), `flights` (one
origin request per key, background revalidation), `store` (writing entries and variants),
`telling` (one event per request, named by its route template) and `unsafe` (invalidation
after unsafe methods).
"""

from __future__ import annotations

from .asgi import request_host
from .cache_middleware import CacheMiddleware
from .config import check_max_variants
from .store import DEFAULT_MAX_VARIANTS, Storage
from .telling import UNMATCHED

__all__ = [
    "DEFAULT_MAX_VARIANTS",
    "UNMATCHED",
    "CacheMiddleware",
    "Storage",
    "check_max_variants",
    "request_host",
]
