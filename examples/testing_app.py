"""A small products API whose tests (examples/test_testing_app.py) use only the kit's pytest
plugin: a cached route with tag invalidation, and an exchange rate cached for five minutes."""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request

from fastapi_cachekit import CacheService, cached_route, get_cache, setup_cache


class Catalog:
    """The "database": counts its reads, so that tests can tell a cache hit from a query."""

    def __init__(self) -> None:
        self.prices = {1: 10.0, 2: 25.0}
        self.reads = 0

    def price(self, product_id: int) -> float:
        self.reads += 1
        if product_id not in self.prices:
            raise HTTPException(status_code=404, detail="no such product")
        return self.prices[product_id]


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


app = FastAPI()
app.state.catalog = Catalog()
setup_cache(app)  # the app's own cache, from CACHEKIT_* settings


def product_tags(request: Request) -> list[str]:
    return [f"product:{request.path_params['product_id']}"]


@app.get("/products/{product_id}")
@cached_route(ttl=60, tags=product_tags)
async def read_product(
    product_id: int, catalog: Catalog = Depends(get_catalog)
) -> dict[str, float]:
    return {"id": product_id, "price": catalog.price(product_id)}


@app.put("/products/{product_id}")
async def set_price(
    product_id: int,
    price: float,
    catalog: Catalog = Depends(get_catalog),
    cache: CacheService = Depends(get_cache),
) -> dict[str, float]:
    catalog.prices[product_id] = price
    await cache.invalidate_tags([f"product:{product_id}"])
    return {"id": product_id, "price": price}


@app.get("/rates/{currency}")
async def rate(currency: str, cache: CacheService = Depends(get_cache)) -> dict[str, float]:
    def fetch_rate() -> float:  # stands for a call to a slow rates service
        app.state.rate_fetches = getattr(app.state, "rate_fetches", 0) + 1
        return 1.1 if currency == "usd" else 1.0

    value = await cache.get_or_set_async(f"rate:{currency}", fetch_rate, ttl=300)
    return {currency: value}
