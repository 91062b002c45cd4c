"""The demo app on Redis: every worker and server shares one cache.

CACHEKIT_REDIS_URL=redis://localhost:6379/0 uvicorn examples.redis_app:app --workers 2
"""

from __future__ import annotations

import os

from examples.app import create_app
from fastapi_cachekit import create_cache

cache = create_cache(
    backend="redis",
    redis_url=os.environ.get("CACHEKIT_REDIS_URL", "redis://localhost:6379/0"),
    key_prefix="demo",
    default_ttl_seconds=1800,
)
app = create_app(cache)
