"""HTTP events: one per client request, told where its Cache-Status is written, named by the
route's path template (never the raw path); and @cached_route's Cache-Status header."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import PlainTextResponse

from fastapi_cachekit import CacheService, MemoryBackend
from fastapi_cachekit.events import CacheEvent
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from fastapi_cachekit.fastapi.middleware.telling import RouteTemplates
from fastapi_cachekit.fastapi.routes import cached_route
from tests.clock import FakeClock

from .middleware_support import Harness, Origin, cache_status
from .test_middleware_flight import Gated, concurrently
from .test_middleware_revalidation import Validating

Told = tuple[str, str | None, str | None]


class Recorder:
    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.events: list[CacheEvent] = []

    def event(self, event: CacheEvent) -> None:
        if event.layer == self.layer:
            self.events.append(event)

    def told(self) -> list[Told]:
        """(kind, template, reason) of each event of the layer, in order; then forgotten."""
        told: list[Told] = [(e.kind, e.namespace, e.reason) for e in self.events]
        self.events.clear()
        return told


def items_app(cache: CacheService) -> FastAPI:
    app = FastAPI()
    app.add_middleware(CacheMiddleware, cache=cache, server_date=False)

    @app.get("/items/{item_id}")
    async def item(item_id: int, response: Response) -> dict[str, int]:
        response.headers["cache-control"] = "max-age=60"
        return {"id": item_id}

    @app.get("/private")
    async def private() -> PlainTextResponse:
        return PlainTextResponse("mine", headers={"cache-control": "no-store"})

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_middleware_outcomes_are_named_by_the_route_template() -> None:
    recorder = Recorder("http")
    cache = CacheService(MemoryBackend(), observers=recorder)
    async with cache, client_for(items_app(cache)) as client:
        await client.get("/items/1")
        await client.get("/items/1")
        await client.get("/items/2?x=1")
        await client.get("/private")
        await client.get("/nowhere/at/all")
        await client.head("/items/1")
    assert recorder.told() == [
        ("stored", "/items/{item_id}", "uri-miss"),
        ("hit", "/items/{item_id}", None),
        ("stored", "/items/{item_id}", "uri-miss"),
        ("not_stored", "/private", "no-store"),
        ("not_stored", "<unmatched>", "no-freshness"),
        ("hit", "/items/{item_id}", None),
    ]


async def test_stale_and_revalidated_answers_are_told_once() -> None:
    recorder = Recorder("http")
    origin = Validating("max-age=10, stale-while-revalidate=30")
    async with Harness(origin.app) as h:
        h.cache.add_observer(recorder)
        await h.get()
        h.clock.advance(15)
        stale = await h.get()
        await h.middleware.drain()  # the background revalidation has no client: not told
        await h.get()
        h.clock.advance(45)  # past the stale window: revalidated before it is served
        revalidated = await h.get()
    assert cache_status(stale) == "fastapi-cachekit; hit; ttl=-5"
    assert cache_status(revalidated).endswith("fwd-status=304; stored")
    template = "/{path:path}"
    assert recorder.told() == [
        ("stored", template, "uri-miss"),
        ("stale_served", template, "stale-while-revalidate"),
        ("hit", template, None),
        ("revalidated", template, "stale"),
    ]


async def test_requests_that_share_a_flight_are_told_as_coalesced() -> None:
    recorder = Recorder("http")
    origin = Gated()
    async with Harness(origin.app) as h:
        h.cache.add_observer(recorder)
        await concurrently(h, origin, 3)
    told = recorder.told()
    assert sorted(told) == [
        ("coalesced", "/{path:path}", "uri-miss"),
        ("coalesced", "/{path:path}", "uri-miss"),
        ("stored", "/{path:path}", "uri-miss"),
    ]


async def test_only_if_cached_without_a_stored_response_is_a_miss() -> None:
    recorder = Recorder("http")
    async with Harness(Gated().app, respect_request_cache_control=True) as h:
        h.cache.add_observer(recorder)
        response = await h.get("/", **{"cache-control": "only-if-cached"})
    assert response.status_code == 504
    assert recorder.told() == [("miss", "/{path:path}", "only-if-cached")]


def route_app(cache: CacheService, **options: object) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cached_route(cache, ttl=60, **options)  # type: ignore[arg-type]
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @app.get("/fresh")
    @cached_route(cache, ttl=60, **options)  # type: ignore[arg-type]
    async def fresh() -> PlainTextResponse:
        return PlainTextResponse("now", headers={"cache-control": "no-store"})

    return app


async def test_cached_route_answers_say_hit_or_miss_and_are_told() -> None:
    recorder = Recorder("route")
    cache = CacheService(MemoryBackend(clock=FakeClock()), observers=recorder)
    async with cache, client_for(route_app(cache)) as client:
        miss = await client.get("/items/1")
        hit = await client.get("/items/1")
        refused = await client.get("/fresh")
        private = await client.get("/items/1", headers={"authorization": "Bearer secret"})
    assert miss.headers["cache-status"] == "fastapi-cachekit; fwd=uri-miss; stored"
    assert hit.headers["cache-status"] == "fastapi-cachekit; hit"
    assert refused.headers["cache-status"] == "fastapi-cachekit; fwd=uri-miss"
    assert private.headers["cache-status"] == "fastapi-cachekit; fwd=bypass"
    assert hit.json() == miss.json() == private.json() == {"id": 1}
    assert recorder.told() == [
        ("stored", "/items/{item_id}", "uri-miss"),
        ("hit", "/items/{item_id}", None),
        ("not_stored", "/fresh", "no-store"),
        ("bypass", "/items/{item_id}", "request"),
    ]


async def test_cached_route_cache_status_can_be_renamed_or_turned_off() -> None:
    cache = CacheService(MemoryBackend(clock=FakeClock()))
    async with cache:
        async with client_for(route_app(cache, cache_status=False)) as client:
            answers = [await client.get("/items/1") for _ in range(2)]
        assert all("cache-status" not in answer.headers for answer in answers)
        await cache.clear_all()
        async with client_for(route_app(cache, cache_status="edge")) as client:
            await client.get("/items/1")
            assert (await client.get("/items/1")).headers["cache-status"] == "edge; hit"


def test_templates_follow_mounts_and_the_memo_stays_bounded() -> None:
    inner = FastAPI()

    @inner.get("/users/{user_id}")
    async def user(user_id: int) -> int:
        return user_id

    app = FastAPI()
    app.mount("/api", inner)
    templates = RouteTemplates()

    def scope(path: str) -> dict[str, object]:
        return {"type": "http", "method": "GET", "path": path, "root_path": "", "app": app}

    assert templates.of(scope("/api/users/7"), app) == "/api/users/{user_id}"
    assert templates.of(scope("/elsewhere"), app) == "<unmatched>"
    for n in range(5000):  # every user id a new path: the memo is cleared, not grown
        assert templates.of(scope(f"/api/users/{n}"), app) == "/api/users/{user_id}"
    assert len(templates._memo) <= 1024


async def test_a_body_past_max_body_bytes_is_told_as_not_stored() -> None:
    recorder = Recorder("http")
    async with Harness(Origin(b"x" * 100).app, max_body_bytes=10) as h:
        h.cache.add_observer(recorder)
        response = await h.get()
    assert cache_status(response) == "fastapi-cachekit; fwd=uri-miss"
    assert recorder.told() == [("not_stored", "/{path:path}", "body-too-large")]
