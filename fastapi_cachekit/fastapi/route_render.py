"""How @cached_route meets FastAPI's internals: the wrapper's signature, and rendering an
endpoint's return value into the Response FastAPI would send.

FastAPI has no public API to render a return value outside its request handler, so this
module calls `fastapi.routing.serialize_response` with the route's response settings (and
checks, once, whether that version takes `dump_json`). Everything version-specific stays here.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, serialize_response
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["parameter_of_type", "render_response", "with_request_and_response"]

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
    content = await serialize_response(
        field=route.response_field,
        response_content=result,
        include=route.response_model_include,
        exclude=route.response_model_exclude,
        by_alias=route.response_model_by_alias,
        exclude_unset=route.response_model_exclude_unset,
        exclude_defaults=route.response_model_exclude_defaults,
        exclude_none=route.response_model_exclude_none,
        **options,
    )
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
