"""The demo app (`make demo`): a slow fake database behind fastapi-cachekit.

The first request for a product takes half a second; the next ones are served from the
cache in well under a millisecond. `POST /products/{id}/price` updates the database and
invalidates the product's tag, so the next read is slow (and fresh) again.

Run it with `make demo`, then open http://127.0.0.1:8000/products/1 twice.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from fastapi_cachekit import cached, create_cache

SLOW_QUERY_SECONDS = 0.5

cache = create_cache()  # configured by CACHEKIT_* variables; memory backend by default
app = FastAPI(title="fastapi-cachekit demo")


class Product(BaseModel):
    id: int
    name: str
    price: float


DATABASE: dict[int, Product] = {
    1: Product(id=1, name="Keyboard", price=49.0),
    2: Product(id=2, name="Mouse", price=19.5),
    3: Product(id=3, name="Monitor", price=229.0),
}


@cached(cache, ttl=timedelta(minutes=5), namespace="products", tags=["products"])
async def load_product(product_id: int) -> Product | None:
    """The slow query the cache saves us from."""
    await asyncio.sleep(SLOW_QUERY_SECONDS)
    return DATABASE.get(product_id)


@app.get("/products/{product_id}")
async def get_product(product_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    product = await load_product(product_id)
    if product is None:
        raise HTTPException(status_code=404, detail="no such product")
    return {"product": product, "elapsed_ms": round((time.perf_counter() - started) * 1000, 2)}


class PriceUpdate(BaseModel):
    price: float


@app.post("/products/{product_id}/price")
async def update_price(product_id: int, update: PriceUpdate) -> dict[str, Any]:
    if product_id not in DATABASE:
        raise HTTPException(status_code=404, detail="no such product")
    DATABASE[product_id] = DATABASE[product_id].model_copy(update={"price": update.price})
    removed = await load_product.cache_invalidate(product_id)
    return {"updated": True, "cache_entries_removed": int(removed)}


@app.get("/cache/stats")
async def cache_stats() -> dict[str, Any]:
    stats = await cache.get_stats()
    return stats.model_dump(mode="json") | {"hit_rate": f"{stats.hit_rate:.2%}"}
