"""Tests of examples/testing_app.py written with the kit's pytest plugin only: each test gets a
fresh memory cache (`cachekit_setup`), a clock it moves by hand (`cachekit_clock`) and a record
of hits and misses (`cachekit_recorder`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from examples.testing_app import Catalog, app
from fastapi_cachekit import CacheService
from fastapi_cachekit.testing import CacheRecorder, ManualClock


@pytest.fixture
def catalog() -> Catalog:
    app.state.catalog = Catalog()
    return app.state.catalog


@pytest.fixture
def client(cachekit_setup: Callable[[Any], CacheService], catalog: Catalog) -> Iterator[TestClient]:
    cachekit_setup(app)
    with TestClient(app) as client:
        yield client


def test_the_second_read_is_a_hit(
    client: TestClient, catalog: Catalog, cachekit_recorder: CacheRecorder
) -> None:
    assert client.get("/products/1").json() == {"id": 1, "price": 10.0}
    cachekit_recorder.assert_miss("route:*")
    assert client.get("/products/1").json() == {"id": 1, "price": 10.0}
    cachekit_recorder.assert_hit("route:*")
    assert catalog.reads == 1


def test_a_new_price_invalidates_the_product(client: TestClient, catalog: Catalog) -> None:
    client.get("/products/1")
    client.put("/products/1", params={"price": 12.5})
    assert client.get("/products/1").json()["price"] == 12.5
    assert catalog.reads == 2


def test_entries_expire_when_the_clock_moves(
    client: TestClient, cachekit_clock: ManualClock, cachekit_recorder: CacheRecorder
) -> None:
    client.get("/rates/usd")
    cachekit_clock.advance(299)
    client.get("/rates/usd")
    cachekit_recorder.assert_hit("rate:usd")
    cachekit_clock.advance(1)
    client.get("/rates/usd")
    cachekit_recorder.assert_miss("rate:usd")
    assert cachekit_recorder.stores("rate:*") == ["rate:usd", "rate:usd"]


def test_with_the_cache_off_every_request_reaches_the_catalog(
    client: TestClient, catalog: Catalog, cachekit_cache: CacheService
) -> None:
    with cachekit_cache.disabled():
        for _ in range(3):
            assert client.get("/products/2").json() == {"id": 2, "price": 25.0}
    assert catalog.reads == 3
    assert client.get("/products/2").status_code == 200
    assert catalog.reads == 4  # on again: stored now, and served next time
    client.get("/products/2")
    assert catalog.reads == 4
