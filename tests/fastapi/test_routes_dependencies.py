"""@cached_route and dependencies on hits: what guards access (route dependencies, parameter
dependencies) runs on every hit; what `skip_on_hit` names (a database session) runs on misses
only; the key still covers every input the response depends on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException

from fastapi_cachekit import CacheService, ConfigurationError
from fastapi_cachekit.fastapi.routes import cached_route
from tests.backend_kinds import new_backend

pytestmark = pytest.mark.usefixtures("http_backend")


class Database:
    """A database whose sessions count their opening, closing and queries."""

    def __init__(self) -> None:
        self.opened = self.closed = self.queries = 0

    def session(self) -> Iterator[Database]:  # a `yield` dependency, like SQLAlchemy's
        self.opened += 1
        try:
            yield self
        finally:
            self.closed += 1

    def price(self, item_id: int) -> float:
        self.queries += 1
        return 10.0 * item_id


class Access:
    """An access check that can be revoked while responses are cached."""

    def __init__(self) -> None:
        self.allowed = True
        self.checks = 0

    def __call__(self) -> None:
        self.checks += 1
        if not self.allowed:
            raise HTTPException(status_code=403, detail="revoked")


@pytest.fixture
def cache() -> CacheService:
    return CacheService(new_backend())


def catalog_app(cache: CacheService, db: Database, access: Access, **options: object) -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/v1", dependencies=[Depends(access)])

    @router.get("/items/{item_id}")
    @cached_route(cache, ttl=60, **options)  # type: ignore[arg-type]
    async def item(item_id: int, session: Database = Depends(db.session)) -> float:
        return session.price(item_id)

    app.include_router(router)
    return app


async def get_all(app: FastAPI, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [await client.get(path) for path in paths]


async def test_without_skip_on_hit_every_dependency_runs_on_hits(cache: CacheService) -> None:
    db, access = Database(), Access()
    app = catalog_app(cache, db, access)
    responses = await get_all(app, *["/v1/items/2"] * 3)
    assert [r.json() for r in responses] == [20.0] * 3
    assert db.queries == 1  # the endpoint ran once: the cache works
    assert (db.opened, db.closed, access.checks) == (3, 3, 3)  # the session opened per hit


async def test_skip_on_hit_opens_no_session_on_hits_and_the_guard_still_runs(
    cache: CacheService,
) -> None:
    db, access = Database(), Access()
    app = catalog_app(cache, db, access, skip_on_hit=[db.session])
    hits = await get_all(app, *["/v1/items/2"] * 3)
    assert [r.json() for r in hits] == [20.0] * 3
    assert (db.opened, db.closed, db.queries) == (1, 1, 1)  # the miss only
    assert access.checks == 3
    # Hits answered through the route's hit handler carry the hit's Cache-Status too.
    assert [r.headers["cache-status"] for r in hits] == [
        "fastapi-cachekit; fwd=uri-miss; stored",
        "fastapi-cachekit; hit",
        "fastapi-cachekit; hit",
    ]

    access.allowed = False  # revoked while the response is cached
    (refused,) = await get_all(app, "/v1/items/2")
    assert (refused.status_code, refused.json()) == (403, {"detail": "revoked"})
    assert db.opened == 1


async def test_a_hit_still_validates_and_keys_by_every_input(cache: CacheService) -> None:
    db = Database()
    app = FastAPI()
    tenants: list[str] = []

    def tenant(x_tenant: str = Header()) -> str:  # a guard that reads a header
        tenants.append(x_tenant)
        return x_tenant

    @app.get("/items/{item_id}")
    @cached_route(cache, ttl=60, skip_on_hit=[db.session])
    async def item(
        item_id: int, who: str = Depends(tenant), session: Database = Depends(db.session)
    ) -> str:
        return f"{who}:{session.price(item_id)}"

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        a1 = await client.get("/items/1", headers={"x-tenant": "a"})
        b1 = await client.get("/items/1", headers={"x-tenant": "b"})
        a2 = await client.get("/items/1", headers={"x-tenant": "a"})
        sessions = db.opened
        missing = await client.get("/items/1")
        invalid = await client.get("/items/one", headers={"x-tenant": "a"})
    assert [a1.json(), b1.json(), a2.json()] == ["a:10.0", "b:10.0", "a:10.0"]
    assert (missing.status_code, invalid.status_code) == (422, 422)
    assert db.queries == sessions == 2  # one per tenant; none for the hit
    assert tenants == ["a", "b", "a", "a"]  # the guard ran on the hit too


async def test_skip_on_hit_with_a_key_func(cache: CacheService) -> None:
    db, access = Database(), Access()
    key = lambda request: f"item-{request.path_params['item_id']}"  # noqa: E731
    app = catalog_app(cache, db, access, skip_on_hit=[db.session], key_func=key)
    responses = await get_all(app, "/v1/items/3", "/v1/items/3", "/v1/items/x")
    assert [r.status_code for r in responses] == [200, 200, 422]
    # The first request and the invalid one (a miss: FastAPI's handler runs everything).
    assert (db.opened, db.queries, access.checks) == (2, 1, 3)


def test_skip_on_hit_names_only_dependencies_of_parameters(cache: CacheService) -> None:
    db = Database()
    with pytest.raises(ConfigurationError, match=r"names \['Database.session'\], which no param"):

        @cached_route(cache, skip_on_hit=[db.session])
        async def item(item_id: int) -> int:
            return item_id
