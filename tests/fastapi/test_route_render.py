"""route_render.py, the one module that touches FastAPI internals: the FastAPI versions it
supports, every internal name it uses, and how it puts a front before a route's handler."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import fastapi
import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute, serialize_response
from starlette.types import Receive, Scope, Send

from fastapi_cachekit.fastapi.route_render import (
    SERIALIZE_ARGUMENTS,
    SUPPORTED_FASTAPI,
    RouteFront,
    put_in_front_of_route,
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


async def test_a_route_with_dependencies_keeps_fastapis_handler() -> None:
    """A dependency, such as an auth check, must run for every request."""
    calls: list[str] = []
    app = fronting_app(None, lambda: calls.append("checked"))
    assert await answers(app, "front", "front") == [(200, "from the endpoint")] * 2
    assert calls == ["checked", "checked"]
    assert not isinstance(route_of(app).app, RouteFront)


async def test_only_the_route_of_the_given_endpoint_gets_a_front() -> None:
    app = fronting_app(lambda: test_only_the_route_of_the_given_endpoint_gets_a_front)
    assert await answers(app, "front", "front") == [(200, "from the endpoint")] * 2
    assert not isinstance(route_of(app).app, RouteFront)
