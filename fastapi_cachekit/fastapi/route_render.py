"""How @cached_route meets FastAPI's internals; everything version-specific stays here.

FastAPI offers no public API for two things @cached_route needs:

- Rendering an endpoint's return value into the Response FastAPI would send, outside its
  request handler: `render_response` calls `fastapi.routing.serialize_response` with the
  route's response settings (and checks, once, whether that version takes `dump_json`).
- Answering a hit before FastAPI solves the route's parameters (most of a hit's cost):
  `put_in_front_of_route` replaces the `app` attribute of the route serving a request, which
  Starlette calls for every request the route matches (with FastAPI 0.165+, for a route of an
  included router, the `app` of the route's per-inclusion context, which is what is called).
- Running, on a hit, only the dependencies a hit needs: `hit_handler` is FastAPI's own handler
  for an endpoint with the cached endpoint's parameters, less those `skip_on_hit` names,
  that returns the stored response (`skipped_parameters` finds them).

`SUPPORTED_FASTAPI` is the range of FastAPI versions these were checked against;
`tests/fastapi/test_route_render.py` fails on any other, and pins every name used here.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import get_dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, serialize_response
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ConfigurationError

__all__ = [
    "SERIALIZE_ARGUMENTS",
    "SUPPORTED_FASTAPI",
    "HitHandler",
    "RouteFront",
    "hit_handler",
    "parameter_of_type",
    "put_in_front_of_route",
    "render_response",
    "skipped_parameters",
    "with_request_and_response",
]

SUPPORTED_FASTAPI = ((0, 110), (0, 166))
"""From the oldest version checked to the first one not checked (major, minor): the route tests
pass on 0.110.3 (the oldest release pyproject.toml accepts) and on 0.165.0."""

SERIALIZE_ARGUMENTS = {
    "field": "response_field",
    "include": "response_model_include",
    "exclude": "response_model_exclude",
    "by_alias": "response_model_by_alias",
    "exclude_unset": "response_model_exclude_unset",
    "exclude_defaults": "response_model_exclude_defaults",
    "exclude_none": "response_model_exclude_none",
}
"""`serialize_response`'s arguments, each taken from the route attribute of that name."""

_REQUEST = "_cachekit_request"
_RESPONSE = "_cachekit_response"
_SERIALIZE_HAS_DUMP_JSON = "dump_json" in inspect.signature(serialize_response).parameters


def with_request_and_response(endpoint: Callable[..., Any]) -> tuple[inspect.Signature, str, str]:
    """The endpoint's signature (annotations resolved) with a Request and a Response parameter.

    FastAPI injects one Request and one Response per endpoint, so the endpoint's own are
    reused when it declares them; otherwise hidden keyword-only ones are added.
    """
    signature = inspect.signature(endpoint)
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
    except NameError:  # a name FastAPI cannot see either; let it report that as usual
        hints = {}
    params = [
        param.replace(annotation=hints.get(name, param.annotation))
        for name, param in signature.parameters.items()
    ]
    request_name = parameter_of_type(params, Request) or _REQUEST
    response_name = parameter_of_type(params, Response) or _RESPONSE
    hidden = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation)
        for name, annotation in ((request_name, Request), (response_name, Response))
        if name not in signature.parameters
    ]
    # Keyword-only parameters must come before a **kwargs.
    tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
    head = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    returns = hints.get("return", inspect.Signature.empty)
    new = signature.replace(parameters=head + hidden + tail, return_annotation=returns)
    return new, request_name, response_name


def parameter_of_type(params: list[inspect.Parameter], kind: type) -> str | None:
    for param in params:
        if inspect.isclass(param.annotation) and issubclass(param.annotation, kind):
            return param.name
    return None


async def render_response(request: Request, result: Any, sub_response: Response) -> Response:
    """The response FastAPI would send for `result` (serialized by the route's model)."""
    if isinstance(result, Response):
        return result
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        response: Response = JSONResponse(result)
        response.raw_headers.extend(sub_response.raw_headers)
        return response
    response_class = route.response_class
    default_class = isinstance(response_class, DefaultPlaceholder)
    dump_json = _SERIALIZE_HAS_DUMP_JSON and route.response_field is not None and default_class
    options: dict[str, Any] = {"dump_json": True} if dump_json else {}
    for argument, attribute in SERIALIZE_ARGUMENTS.items():
        options[argument] = getattr(route, attribute)
    content = await serialize_response(response_content=result, **options)
    status = sub_response.status_code or route.status_code
    args: dict[str, Any] = {} if status is None else {"status_code": status}
    if dump_json:
        response = Response(content=content, media_type="application/json", **args)
    else:
        cls = (
            response_class.value
            if isinstance(response_class, DefaultPlaceholder)
            else response_class
        )
        response = cls(content, **args)
    response.raw_headers.extend(sub_response.raw_headers)
    return response


class RouteFront:
    """Base of an ASGI app put in front of a route's own handler, `app`; `route` is what
    serves the request (the APIRoute, or its per-inclusion context: both have `path`,
    `methods`, `dependencies`, `dependency_overrides_provider`). This one passes every request
    on; subclasses answer some themselves."""

    def __init__(self, app: ASGIApp, route: Any) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def put_in_front_of_route(
    scope: Scope, endpoint: Callable[..., Any], front: Callable[[ASGIApp, Any], RouteFront]
) -> None:
    """From the next request on, send the requests of the route serving `scope` to
    `front(handler, route)`, where handler is FastAPI's own, when the route's endpoint is
    `endpoint`. Once per route (per inclusion of its router).

    The check and the assignment have no await between them, so two concurrent first
    requests cannot both install a front.
    """
    route = scope.get("route")
    if not isinstance(route, APIRoute) or route.endpoint is not endpoint:
        return
    # FastAPI 0.165+ serves an included router's route through a per-inclusion context that
    # it keeps in the scope; that context's `app` is the handler then called.
    context = scope.get("fastapi", {}).get("effective_route_context")
    serving = context if getattr(context, "original_route", None) is route else route
    if not isinstance(serving.app, RouteFront):
        serving.app = front(serving.app, serving)


def skipped_parameters(endpoint: Callable[..., Any], calls: Collection[Any]) -> frozenset[str]:
    """The names of the endpoint's parameters whose dependency (`Depends(call)`) is one of
    `calls`; ConfigurationError for a call that no parameter depends on."""
    if not calls:
        return frozenset()
    try:
        dependencies = get_dependant(path="", call=endpoint).dependencies
    except NameError as exc:
        raise ConfigurationError(
            f"@cached_route: skip_on_hit needs the annotations of {endpoint.__qualname__} "
            f"resolved at decoration: {exc}"
        ) from exc
    names = frozenset(d.name for d in dependencies if d.name and d.call in calls)
    found = {d.call for d in dependencies if d.name in names}
    missing = [getattr(call, "__qualname__", repr(call)) for call in calls if call not in found]
    if missing:
        raise ConfigurationError(
            f"@cached_route: skip_on_hit names {missing}, which no parameter of "
            f"{endpoint.__qualname__} depends on; name the functions given to Depends() in "
            "its parameters (the route's dependencies=[...] always run)"
        )
    return names


class HitHandler(NamedTuple):
    """FastAPI's handler for a route's hits, and whether it runs any dependency."""

    app: ASGIApp
    runs_dependencies: bool


def hit_handler(
    route: Any,
    signature: inspect.Signature,
    request_name: str,
    skipped: Collection[str],
    answer: Callable[[Request], Response],
) -> HitHandler:
    """The handler FastAPI would build for an endpoint with `signature` less the `skipped`
    parameters, on `route`'s path, methods, dependencies and dependency overrides, that
    sends `answer(request)`: it validates the request and runs every dependency a hit still
    needs (auth checks), in FastAPI's order, with FastAPI's errors and cleanup."""

    async def hit(**kwargs: Any) -> Response:
        return answer(kwargs[request_name])

    kept = [p for name, p in signature.parameters.items() if name not in skipped]
    hit.__dict__["__signature__"] = signature.replace(
        parameters=kept, return_annotation=inspect.Signature.empty
    )
    handled = APIRoute(
        route.path,
        hit,
        methods=list(route.methods),
        dependencies=list(route.dependencies),
        dependency_overrides_provider=route.dependency_overrides_provider,
        response_model=None,
    )
    return HitHandler(handled.app, bool(handled.dependant.dependencies))
