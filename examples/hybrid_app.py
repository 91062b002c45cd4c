"""The demo app on the hybrid backend: hot entries in each process's memory, Redis behind,
and invalidations announced to every process.

    CACHEKIT_REDIS_URL=redis://localhost:6379/0 uvicorn examples.hybrid_app:app --workers 2
"""

from __future__ import annotations

import os

from examples.app import create_app, demo_cache

cache = demo_cache(
    backend="hybrid",
    redis_url=os.environ.get("CACHEKIT_REDIS_URL", "redis://localhost:6379/0"),
    key_prefix="demo",
    max_memory_items=5000,
    l1_max_ttl_seconds=30,
)
app = create_app(cache)
