"""@cached_route: both forms, FastAPI features kept, replay fidelity, keys, safety rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel

from fastapi_cachekit import CacheService, InvalidTTLError
from fastapi_cachekit.fastapi.dependencies import get_cache, setup_cache
from fastapi_cachekit.fastapi.routes import cached_route
from tests.backend_kinds import new_backend
from tests.clock import FakeClock

pytestmark = pytest.mark.usefixtures("http_backend")


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return self.count


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(clock: FakeClock) -> CacheService:
    return CacheService(new_backend(clock))


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_spec_form_with_key_func_and_namespace(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/products/{product_id}")
    @cached_route(
        cache,
        ttl=timedelta(minutes=15),
        namespace="api",
        key_func=lambda req: f"product-{req.path_params['product_id']}",
    )
    async def get_product(product_id: int) -> dict[str, object]:
        return {"product": {"id": product_id, "call": calls()}}

    async with client_for(app) as client:
        first = await client.get("/products/1")
        second = await client.get("/products/1")
    assert first.json() == second.json() == {"product": {"id": 1, "call": 1}}
    assert calls.count == 1
    assert await cache.exists("product-1", namespace="api")


async def test_app_form_takes_the_apps_service_and_tags(cache: CacheService) -> None:
    app = FastAPI()
    setup_cache(app, cache)
    calls = Calls()

    @app.get("/items/{item_id}")
    @cached_route(ttl=60, tags=lambda req: [f"item:{req.path_params['item_id']}"])
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id, "call": calls()}

    async with client_for(app) as client:
        await client.get("/items/1")
        await client.get("/items/2")
        assert (await client.get("/items/1")).json()["call"] == 1
        assert await cache.invalidate_tags(["item:1"]) == 1
        assert (await client.get("/items/1")).json()["call"] == 3
        assert (await client.get("/items/2")).json()["call"] == 2


async def test_ttl_expires_with_the_clock(cache: CacheService, clock: FakeClock) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/t")
    @cached_route(cache, ttl=30)
    async def t() -> int:
        return calls()

    async with client_for(app) as client:
        assert (await client.get("/t")).json() == 1
        clock.advance(29)
        assert (await client.get("/t")).json() == 1
        clock.advance(1)
        assert (await client.get("/t")).json() == 2


@pytest.mark.parametrize("ttl", [0, 1e300, "60"])
def test_a_bad_ttl_fails_at_decoration(ttl: object) -> None:
    with pytest.raises(InvalidTTLError, match="ttl"):
        cached_route(ttl=ttl)  # type: ignore[arg-type]


async def test_default_ttl_is_the_services(clock: FakeClock) -> None:
    cache = CacheService(new_backend(clock), default_ttl=10)
    app = FastAPI()
    calls = Calls()

    @app.get("/t")
    @cached_route(cache)
    async def t() -> int:
        return calls()

    async with client_for(app) as client:
        await client.get("/t")
        clock.advance(10)
        assert (await client.get("/t")).json() == 2


class Item(BaseModel):
    id: int
    name: str


class ItemOut(BaseModel):
    id: int


def twin_apps(cache: CacheService) -> tuple[FastAPI, FastAPI]:
    """The same endpoints with and without @cached_route, for side-by-side comparison."""
    apps = []
    for decorate in (cached_route(cache, ttl=60), lambda f: f):
        app = FastAPI()

        @app.get("/model", response_model=ItemOut)
        @decorate
        async def model() -> Item:
            return Item(id=1, name="hidden by response_model")

        @app.get("/list")
        @decorate
        async def listing(limit: int = Query(2, ge=1)) -> list[int]:
            return list(range(limit))

        @app.get("/html", response_class=HTMLResponse)
        @decorate
        async def html() -> str:
            return "<p>hi</p>"

        @app.get("/plain")
        @decorate
        async def plain() -> PlainTextResponse:
            return PlainTextResponse("text", status_code=203, headers={"x-extra": "1"})

        @app.get("/json")
        @decorate
        async def json_response() -> JSONResponse:
            return JSONResponse({"a": "é"}, status_code=200, headers={"x-json": "y"})

        @app.get("/injected", status_code=200)
        @decorate
        async def injected(response: Response) -> dict[str, str]:
            response.headers["x-set-by-handler"] = "yes"
            response.status_code = 203
            return {"ok": "yes"}

        @app.get("/sync")
        @decorate
        def sync_endpoint(q: str = "x") -> dict[str, str]:
            return {"q": q}

        apps.append(app)
    return apps[0], apps[1]


@pytest.mark.parametrize(
    "path", ["/model", "/list?limit=3", "/html", "/plain", "/json", "/injected", "/sync?q=a"]
)
async def test_hit_and_miss_match_the_uncached_endpoint(cache: CacheService, path: str) -> None:
    cached_app, plain_app = twin_apps(cache)
    async with client_for(cached_app) as cached_client, client_for(plain_app) as plain:
        miss = await cached_client.get(path)
        hit = await cached_client.get(path)
        reference = await plain.get(path)
    for response in (miss, hit):
        assert response.status_code == reference.status_code
        assert response.content == reference.content
        headers = [item for item in response.headers.multi_items() if item[0] != "cache-status"]
        assert sorted(headers) == sorted(reference.headers.multi_items())
    assert miss.headers["cache-status"] == "fastapi-cachekit; fwd=uri-miss; stored"
    assert hit.headers["cache-status"] == "fastapi-cachekit; hit"
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (1, 1)  # the second answer was a hit


async def test_openapi_and_validation_are_unchanged(cache: CacheService) -> None:
    cached_app, plain_app = twin_apps(cache)
    cached_schema, plain_schema = cached_app.openapi(), plain_app.openapi()
    assert cached_schema["paths"] == plain_schema["paths"]
    async with client_for(cached_app) as client:
        response = await client.get("/list?limit=0")
    assert response.status_code == 422


class Session:
    """A new object per request, like a database session."""


def session() -> Session:
    return Session()


async def test_dependencies_run_and_do_not_leak_into_the_key(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/users/{user_id}")
    @cached_route(cache, ttl=60)
    async def user(user_id: int, db: Session = Depends(session)) -> dict[str, int]:
        assert isinstance(db, Session)
        return {"id": user_id, "call": calls()}

    async with client_for(app) as client:
        await client.get("/users/1")
        await client.get("/users/1")
    assert calls.count == 1


async def test_key_uses_path_and_sorted_query_values(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/search")
    @cached_route(cache, ttl=60)
    async def search(a: str = "", b: str = "") -> int:
        return calls()

    async with client_for(app) as client:
        assert (await client.get("/search?a=1&b=2")).json() == 1
        assert (await client.get("/search?b=2&a=1")).json() == 1
        assert (await client.get("/search?a=1&b=3")).json() == 2


@pytest.mark.parametrize(
    ("headers", "cache_control"),
    [({"set-cookie": "s=1"}, None), ({}, "no-store"), ({}, "private")],
)
async def test_unsafe_responses_are_not_stored(
    cache: CacheService, headers: dict[str, str], cache_control: str | None
) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/r")
    @cached_route(cache, ttl=60)
    async def r() -> JSONResponse:
        response = JSONResponse({"call": calls()}, headers=headers)
        if cache_control:
            response.headers["cache-control"] = cache_control
        return response

    async with client_for(app) as client:
        await client.get("/r")
        await client.get("/r")
    assert calls.count == 2


async def test_other_methods_pass_through(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.post("/p")
    @cached_route(cache, ttl=60)
    async def p() -> int:
        return calls()

    async with client_for(app) as client:
        await client.post("/p")
        assert (await client.post("/p")).json() == 2


async def test_vary_on_headers_and_private_requests(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/shared")
    @cached_route(cache, ttl=60)
    async def shared() -> int:
        return calls()

    @app.get("/mine")
    @cached_route(cache, ttl=60, vary_on=["Authorization"])
    async def mine(request: Request) -> dict[str, object]:
        return {"user": request.headers.get("authorization"), "call": calls()}

    async with client_for(app) as client:
        await client.get("/shared", headers={"Authorization": "Bearer a"})
        await client.get("/shared", headers={"Authorization": "Bearer a"})
        assert calls.count == 2  # requests with credentials bypass a shared route
        a1 = await client.get("/mine", headers={"Authorization": "Bearer a"})
        b1 = await client.get("/mine", headers={"Authorization": "Bearer b"})
        a2 = await client.get("/mine", headers={"Authorization": "Bearer a"})
    assert a1.json() == a2.json() == {"user": "Bearer a", "call": 3}
    assert b1.json() == {"user": "Bearer b", "call": 4}


async def test_vary_on_other_headers_keeps_credentialed_requests_out(
    cache: CacheService,
) -> None:
    # vary_on=["accept-language"] says nothing about users: a request with a Cookie must
    # not be answered with (nor store) a response keyed by its language alone.
    app = FastAPI()
    calls = Calls()

    @app.get("/greeting")
    @cached_route(cache, ttl=60, vary_on=["accept-language", "Authorization"])
    async def greeting(request: Request) -> dict[str, object]:
        return {"cookie": request.headers.get("cookie"), "call": calls()}

    fr = {"accept-language": "fr"}
    async with client_for(app) as client:
        assert (await client.get("/greeting", headers=fr)).json()["call"] == 1
        ada = await client.get("/greeting", headers={**fr, "cookie": "user=ada"})
        assert ada.json() == {"cookie": "user=ada", "call": 2}
        bob = await client.get("/greeting", headers={**fr, "cookie": "user=bob"})
        assert bob.json() == {"cookie": "user=bob", "call": 3}
        # Authorization is in the key: such requests are cached, one entry per token.
        token = {**fr, "authorization": "Bearer a"}
        assert (await client.get("/greeting", headers=token)).json()["call"] == 4
        assert (await client.get("/greeting", headers=token)).json()["call"] == 4
        assert (await client.get("/greeting", headers=fr)).json()["call"] == 1


async def test_vary_on_a_function_of_the_request(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/me")
    @cached_route(cache, ttl=60, vary_on=lambda req: req.headers.get("x-user", ""))
    async def me() -> int:
        return calls()

    async with client_for(app) as client:
        await client.get("/me", headers={"x-user": "1", "cookie": "s=1"})
        assert (await client.get("/me", headers={"x-user": "1"})).json() == 1
        assert (await client.get("/me", headers={"x-user": "2"})).json() == 2


@pytest.fixture
async def app_cache() -> AsyncIterator[CacheService]:
    service = CacheService(new_backend())
    yield service
    await service.close()


async def test_get_cache_and_cached_route_share_the_service(app_cache: CacheService) -> None:
    app = FastAPI()
    setup_cache(app, app_cache)

    @app.get("/v")
    @cached_route(ttl=60, tags=["v"])
    async def v(cache: CacheService = Depends(get_cache)) -> int:
        return int(await cache.get("counter", default=0))

    async with client_for(app) as client:
        assert (await client.get("/v")).json() == 0
        await app_cache.set("counter", 5)
        assert (await client.get("/v")).json() == 0
        await app_cache.invalidate_tags(["v"])
        assert (await client.get("/v")).json() == 5


async def test_dependencies_run_on_every_hit(cache: CacheService) -> None:
    """A dependency (an auth check, say) must never be skipped by a cache hit."""
    app = FastAPI()
    checks = Calls()
    router = APIRouter(dependencies=[Depends(lambda: checks())])

    def current_user() -> str:
        checks()
        return "ada"

    @app.get("/mine")
    @cached_route(cache, ttl=60, cache_private_requests=True)
    async def mine(user: str = Depends(current_user)) -> str:
        return user

    @router.get("/guarded")
    @cached_route(cache, ttl=60)
    async def guarded() -> str:
        return "secret"

    app.include_router(router)
    async with client_for(app) as client:
        for _ in range(3):
            await client.get("/mine")
            await client.get("/guarded")
    assert checks.count == 6


async def test_hits_without_dependencies_are_counted_once(cache: CacheService) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/items/{item_id}")
    @cached_route(cache, ttl=60)
    async def item(item_id: int) -> int:
        return calls()

    async with client_for(app) as client:
        responses = [await client.get("/items/7") for _ in range(5)]
        invalid = await client.get("/items/not-a-number")
    assert [r.json() for r in responses] == [1] * 5
    assert invalid.status_code == 422  # validation still happens for what is not stored
    stats = await cache.get_stats()
    assert (stats.total_hits, stats.total_misses) == (4, 2)


async def test_a_response_computed_before_an_invalidation_is_not_stored(
    cache: CacheService,
) -> None:
    app = FastAPI()
    calls = Calls()

    @app.get("/slow")
    @cached_route(cache, ttl=60, tags=["data"])
    async def slow() -> int:
        await cache.invalidate_tags(["data"])  # the data changes while we compute
        return calls()

    async with client_for(app) as client:
        assert (await client.get("/slow")).json() == 1
        assert (await client.get("/slow")).json() == 2


async def test_a_failing_tags_function_skips_storing_and_the_answer_stands(
    cache: CacheService, caplog: pytest.LogCaptureFixture
) -> None:
    app = FastAPI()
    calls = Calls()

    def broken_tags(request: Request) -> list[str]:
        raise LookupError("no such tenant")

    @app.get("/item")
    @cached_route(cache, ttl=60, tags=broken_tags)
    async def item() -> dict[str, int]:
        return {"call": calls()}

    async with client_for(app) as client:
        answers = [await client.get("/item") for _ in range(2)]
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"call": 1}), (200, {"call": 2})]
    assert "tags function failed" in caplog.text
    assert (await cache.get_stats()).total_entries == 0
