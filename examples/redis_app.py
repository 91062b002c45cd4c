"""The demo app on Redis: every worker and server shares one cache (and, through
examples/store.py, one database), so any worker gives the same answer.

CACHEKIT_REDIS_URL=redis://localhost:6379/0 uvicorn examples.redis_app:app --workers 2
"""

from __future__ import annotations

import os

from examples.app import create_app, demo_cache

cache = demo_cache(
    backend="redis",
    redis_url=os.environ.get("CACHEKIT_REDIS_URL", "redis://localhost:6379/0"),
    key_prefix="demo",
    default_ttl_seconds=1800,
)
app = create_app(cache)
