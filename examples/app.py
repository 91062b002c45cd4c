"""The demo app (`make demo`): a slow SQLite database behind fastapi-cachekit's four tools.

- `@cached` on the slow query, a plain `def` that runs in a worker thread,
- `@cached_route` on `GET /products/{id}` (tagged per product),
- `CacheMiddleware` caching whole responses of `GET /catalog` for 60 s (tagged "catalog"),
- `Depends(get_cache)` in the update endpoint, which invalidates the product's tag,
- the admin router at `/admin/cache`, guarded by the cache's own admin token: send
  `Authorization: Bearer <CACHEKIT_ADMIN_TOKEN>` (the demo's default is DEMO_ADMIN_TOKEN).

The first request for a product takes half a second; the next ones come from the cache.
Run it with `make demo` and open http://127.0.0.1:8000/products/1 twice, then
http://127.0.0.1:8000/docs. The backend comes from CACHEKIT_* variables (memory by default);
examples/redis_app.py and examples/hybrid_app.py build the same app on Redis, where several
workers share the cache and the database (examples/store.py), and every answer is right
whichever worker gives it: the `x-demo-worker` header says which one did.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from anyio import to_thread
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from examples.store import Product, ProductStore, default_path
from fastapi_cachekit import (
    CacheMiddleware,
    CacheService,
    admin_router,
    cached,
    cached_route,
    create_cache,
    get_cache,
    setup_cache,
)

SLOW_QUERY_SECONDS = float(os.environ.get("DEMO_SLOW_QUERY_SECONDS", "0.5"))
DEMO_ADMIN_TOKEN = "demo-admin-token-change-me"
"""The admin token when CACHEKIT_ADMIN_TOKEN is not set: fine on your laptop, never deploy."""


class PriceUpdate(BaseModel):
    price: float


def demo_cache(**settings: Any) -> CacheService:
    """A cache from CACHEKIT_* settings and `settings`, with the demo's admin token unless
    CACHEKIT_ADMIN_TOKEN is set."""
    token = os.environ.get("CACHEKIT_ADMIN_TOKEN") or DEMO_ADMIN_TOKEN
    return create_cache(admin_token=token, **settings)


def create_app(cache: CacheService | None = None) -> FastAPI:
    """The demo app on `cache` (default: `demo_cache()`) and the shared database."""
    app = FastAPI(title="fastapi-cachekit demo")
    service = setup_cache(app, cache if cache is not None else demo_cache())
    store = ProductStore(default_path())
    app.add_middleware(
        CacheMiddleware, ttl=60, include=["/catalog"], tags_func=lambda request: ["catalog"]
    )
    app.include_router(admin_router(cache=service))

    @app.middleware("http")  # outermost: on cache hits too
    async def name_the_worker(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["x-demo-worker"] = str(os.getpid())
        return response

    @cached(service, ttl=timedelta(minutes=5), namespace="db", tags=["products"])
    def load_product(product_id: int) -> Product | None:
        """The slow query the cache saves us from (in a worker thread: it blocks)."""
        time.sleep(SLOW_QUERY_SECONDS)
        return store.get(product_id)

    @app.get("/products/{product_id}")
    @cached_route(ttl=60, tags=lambda req: [f"product:{req.path_params['product_id']}"])
    async def get_product(product_id: int) -> dict[str, Any]:
        started = time.perf_counter()
        product = await load_product(product_id)
        if product is None:
            raise HTTPException(status_code=404, detail="no such product")
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        return {"product": product, "computed_in_ms": elapsed}

    @app.get("/catalog")
    async def catalog() -> list[Product]:
        ids = await to_thread.run_sync(store.ids)
        return [product for product_id in ids if (product := await load_product(product_id))]

    @app.post("/products/{product_id}/price")
    async def update_price(
        product_id: int, update: PriceUpdate, cache: CacheService = Depends(get_cache)
    ) -> dict[str, Any]:
        if not await to_thread.run_sync(store.set_price, product_id, update.price):
            raise HTTPException(status_code=404, detail="no such product")
        removed = int(await load_product.cache_invalidate(product_id))
        removed += await cache.invalidate_tags([f"product:{product_id}", "catalog"])
        return {"updated": True, "cache_entries_removed": removed}

    return app


app = create_app()
