"""route_render.py, the one module that touches FastAPI internals: the FastAPI versions it
supports, every internal name it uses, and how it puts a front before a route's handler."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import fastapi
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute, serialize_response
from starlette.types import Receive, Scope, Send

from fastapi_cachekit import ConfigurationError
from fastapi_cachekit.fastapi.route_render import (
    SERIALIZE_ARGUMENTS,
    SUPPORTED_FASTAPI,
    RouteFront,
    hit_handler,
    put_in_front_of_route,
    skipped_parameters,
    with_request_and_response,
)


def test_the_installed_fastapi_is_a_supported_version() -> None:
    """A FastAPI outside the range may have changed the internals below: check them against
    it, then widen SUPPORTED_FASTAPI (and the range in docs/guides/routes.md)."""
    version = tuple(int(part) for part in fastapi.__version__.split(".")[:2])
    oldest, first_unchecked = SUPPORTED_FASTAPI
    assert oldest <= version < first_unchecked, fastapi.__version__


def test_serialize_response_takes_every_argument_render_passes() -> None:
    parameters = inspect.signature(serialize_response).parameters
    assert {"response_content", *SERIALIZE_ARGUMENTS} <= set(parameters)


def test_a_route_has_every_attribute_render_and_the_front_read() -> None:
    route = APIRoute("/", lambda: None)
    read = {*SERIALIZE_ARGUMENTS.values(), "response_class", "status_code", "endpoint", "app"}
    read |= {"path", "methods", "dependencies", "dependency_overrides_provider", "dependant"}
    assert [name for name in sorted(read) if not hasattr(route, name)] == []
    assert isinstance(route.response_class, DefaultPlaceholder)
    assert route.dependant.dependencies == []


class Teapot(RouteFront):
    """Answers `?front` itself; passes everything else on to the route's handler."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["query_string"] == b"front":
            await PlainTextResponse("from the front", status_code=418)(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def fronting_app(
    endpoint_to_front: Callable[[], Callable[..., Any]] | None = None,
    *dependencies: Any,
) -> FastAPI:
    """One route, /r, whose endpoint asks for a Teapot in front of the route serving it."""
    app = FastAPI()

    @app.get("/r", dependencies=[Depends(dependency) for dependency in dependencies])
    async def endpoint(request: Request) -> str:
        target = endpoint_to_front() if endpoint_to_front else endpoint
        put_in_front_of_route(request.scope, target, Teapot)
        return "from the endpoint"

    return app


async def answers(app: FastAPI, *queries: str) -> list[tuple[int, str]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return [
            (r.status_code, r.json() if r.status_code == 200 else r.text)
            for r in [await client.get("/r?" + query) for query in queries]
        ]


def route_of(app: FastAPI) -> APIRoute:
    (route,) = [route for route in app.routes if isinstance(route, APIRoute)]
    return route


async def test_the_front_answers_from_the_next_request_on() -> None:
    app = fronting_app()
    assert await answers(app, "front", "front", "other") == [
        (200, "from the endpoint"),  # the request that installs the front
        (418, "from the front"),
        (200, "from the endpoint"),  # passed on to FastAPI's handler
    ]


async def test_the_front_is_installed_once_per_route() -> None:
    app = fronting_app()
    await answers(app, "other", "other", "other")
    front = route_of(app).app
    assert isinstance(front, Teapot)
    assert not isinstance(front.app, RouteFront)


async def test_a_route_with_dependencies_gets_a_front_too() -> None:
    """The front decides what runs: @cached_route's sends hits through `hit_handler`."""
    calls: list[str] = []
    app = fronting_app(None, lambda: calls.append("checked"))
    assert await answers(app, "front", "other") == [(200, "from the endpoint")] * 2
    assert calls == ["checked", "checked"]  # the front passed "other" on to FastAPI
    assert isinstance(route_of(app).app, Teapot)


async def test_an_included_routers_route_gets_its_front() -> None:
    """With FastAPI 0.165+, an included route is served through a per-inclusion context."""
    app, router = FastAPI(), APIRouter(prefix="/v1")

    @router.get("/r")
    async def endpoint(request: Request) -> str:
        put_in_front_of_route(request.scope, endpoint, Teapot)
        return "from the endpoint"

    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        statuses = [(await client.get("/v1/r?front")).status_code for _ in range(2)]
    assert statuses == [200, 418]


def session() -> Iterator[str]:
    yield "session"


async def test_the_hit_handler_runs_what_a_hit_needs_and_skips_the_rest() -> None:
    calls: list[str] = []

    def guard(x_role: str = Header()) -> None:
        calls.append("guard")
        if x_role != "admin":
            raise HTTPException(status_code=403)

    def open_session() -> Iterator[str]:
        calls.append("session")
        yield "session"

    async def endpoint(
        item_id: int, db: str = Depends(open_session), user: None = Depends(guard)
    ) -> str:
        return "from the endpoint"

    signature, request_name, _ = with_request_and_response(endpoint)
    skipped = skipped_parameters(endpoint, [open_session])
    assert skipped == {"db"}
    route = APIRoute(
        "/items/{item_id}", endpoint, dependencies=[Depends(lambda: calls.append("route"))]
    )
    handler = hit_handler(
        route, signature, request_name, skipped, lambda request: PlainTextResponse("stored")
    )
    assert handler.runs_dependencies
    app = FastAPI()
    app.router.routes.append(APIRoute("/items/{item_id}", lambda: None))
    app.router.routes[-1].app = handler.app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        allowed = await client.get("/items/1", headers={"x-role": "admin"})
        refused = await client.get("/items/1", headers={"x-role": "guest"})
        invalid = await client.get("/items/one", headers={"x-role": "admin"})
    assert (allowed.status_code, allowed.text) == (200, "stored")
    assert (refused.status_code, invalid.status_code) == (403, 422)
    assert calls == ["route", "guard"] * 3  # never "session"


def test_skip_on_hit_must_name_a_parameters_dependency() -> None:
    async def endpoint(db: str = Depends(session)) -> str:
        return db

    with pytest.raises(ConfigurationError, match=r"skip_on_hit names \['len'\], which no"):
        skipped_parameters(endpoint, [session, len])


async def test_only_the_route_of_the_given_endpoint_gets_a_front() -> None:
    app = fronting_app(lambda: test_only_the_route_of_the_given_endpoint_gets_a_front)
    assert await answers(app, "front", "front") == [(200, "from the endpoint")] * 2
    assert not isinstance(route_of(app).app, RouteFront)
