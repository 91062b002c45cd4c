"""The demo app (`make demo`): a slow fake database behind fastapi-cachekit's four tools.

- `@cached` on the slow query function,
- `@cached_route` on `GET /products/{id}` (tagged per product),
- `CacheMiddleware` caching whole responses of `GET /catalog` for 60 s (tagged "catalog"),
- `Depends(get_cache)` in the update endpoint, which invalidates the product's tag,
- the admin router at `/admin/cache` (send `X-Admin-Token: demo`; set DEMO_ADMIN_TOKEN).

The first request for a product takes half a second; the next ones come from the cache.
Run it with `make demo` and open http://127.0.0.1:8000/products/1 twice, then
http://127.0.0.1:8000/docs. The backend comes from CACHEKIT_* variables (memory by default);
examples/redis_app.py and examples/hybrid_app.py build the same app on Redis.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel

from fastapi_cachekit import (
    CacheMiddleware,
    CacheService,
    admin_router,
    cached,
    cached_route,
    get_cache,
    setup_cache,
)

SLOW_QUERY_SECONDS = 0.5


class Product(BaseModel):
    id: int
    name: str
    price: float


class PriceUpdate(BaseModel):
    price: float


DATABASE: dict[int, Product] = {
    1: Product(id=1, name="Keyboard", price=49.0),
    2: Product(id=2, name="Mouse", price=19.5),
    3: Product(id=3, name="Monitor", price=229.0),
}


def require_admin(x_admin_token: str = Header("")) -> None:
    """A stand-in for your real admin authentication."""
    expected = os.environ.get("DEMO_ADMIN_TOKEN", "demo")
    if not hmac.compare_digest(x_admin_token.encode(), expected.encode()):
        raise HTTPException(status_code=403, detail="admins only")


def create_app(cache: CacheService | None = None) -> FastAPI:
    """The demo app on `cache` (default: a service built from CACHEKIT_* settings)."""
    app = FastAPI(title="fastapi-cachekit demo")
    service = setup_cache(app, cache)
    app.add_middleware(
        CacheMiddleware, ttl=60, include=["/catalog"], tags_func=lambda request: ["catalog"]
    )
    app.include_router(admin_router(dependencies=[Depends(require_admin)]))

    @cached(service, ttl=timedelta(minutes=5), namespace="db", tags=["products"])
    async def load_product(product_id: int) -> Product | None:
        """The slow query the cache saves us from."""
        await asyncio.sleep(SLOW_QUERY_SECONDS)
        return DATABASE.get(product_id)

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
        return [product for product_id in DATABASE if (product := await load_product(product_id))]

    @app.post("/products/{product_id}/price")
    async def update_price(
        product_id: int, update: PriceUpdate, cache: CacheService = Depends(get_cache)
    ) -> dict[str, Any]:
        if product_id not in DATABASE:
            raise HTTPException(status_code=404, detail="no such product")
        DATABASE[product_id] = DATABASE[product_id].model_copy(update={"price": update.price})
        removed = await load_product.cache_invalidate(product_id)
        removed += await cache.invalidate_tags([f"product:{product_id}", "catalog"])
        return {"updated": True, "cache_entries_removed": removed}

    return app


app = create_app()
