"""The app the chaos suite serves with uvicorn: a cached route, a middleware-cached route, and
writes that bump the source of truth, then invalidate by tag.

`uvicorn tests.chaos.app:app --workers N`, configured by CACHEKIT_* variables (backend, Redis
URL, key prefix) and CHAOS_TRUTH_DIR (the VersionStore's directory). Every body carries the
version read from the truth and the id of the fill that computed it, so the load generator can
tell stale reads (an old version) and hits (a fill id seen before) apart.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from starlette.requests import Request

from fastapi_cachekit import (
    CacheMiddleware,
    CacheService,
    cached_route,
    get_cache,
    setup_cache,
)

from .truth import VersionStore

__all__ = ["ENTRY_TTL", "app"]

ENTRY_TTL = 300  # seconds: longer than any run, so a lost invalidation never heals by expiry
_HOLD_LIMIT = 60.0  # seconds a held fill waits before giving up (the test kills it first)

truth = VersionStore(Path(os.environ["CHAOS_TRUTH_DIR"]))


def item_tags(request: Request) -> list[str]:
    """The tag of the item a request reads (its last path segment)."""
    return [f"item-{request.url.path.rsplit('/', 1)[-1]}"]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await app.state.cachekit.get("chaos-warm-up")  # connect before announcing readiness
    truth.ready_path(os.getpid()).touch()
    yield


app = FastAPI(lifespan=lifespan)
setup_cache(app)
app.add_middleware(CacheMiddleware, ttl=ENTRY_TTL, include=["/mw/*"], tags_func=item_tags)


async def read_item(item: str) -> dict[str, Any]:
    """What the database would answer, plus the id of this computation."""
    version = truth.read(item)
    if truth.hold_path(item).exists():
        await _hold(item)
    return {"item": item, "version": version, "fill": uuid.uuid4().hex, "pid": os.getpid()}


async def _hold(item: str) -> None:
    """Stop midway through a fill until the test kills this worker (or lifts the hold)."""
    truth.mark_holder(item, os.getpid())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _HOLD_LIMIT
    while truth.hold_path(item).exists() and loop.time() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # another process lifts the hold: nothing to await on


@app.get("/route/{item}")
@cached_route(ttl=ENTRY_TTL, tags=item_tags)
async def route_item(item: str) -> dict[str, Any]:
    return await read_item(item)


@app.get("/mw/{item}")
async def middleware_item(item: str) -> dict[str, Any]:
    return await read_item(item)


@app.post("/write/{item}")
async def write_item(item: str, cache: CacheService = Depends(get_cache)) -> dict[str, Any]:
    """Change the item in the source of truth, then invalidate what the cache holds of it:
    the response is the acknowledgement the stale-read check counts from."""
    version = truth.bump(item)
    removed = await cache.invalidate_tags([f"item-{item}"])
    return {"item": item, "version": version, "removed": removed}
