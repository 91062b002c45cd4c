"""The request inputs of a cached endpoint that its cache key must cover.

A hit answers without running the endpoint, so everything the endpoint (or one of its
dependencies) reads from the request must be in the key: two requests with one key must get
one answer. The URL key covers the scheme, host, path and query; this module finds the header
and cookie parameters FastAPI would pass, from the endpoint's `Dependant` (FastAPI's own
analysis of its signature), and refuses, at decoration, inputs a key cannot cover;
`input_values` reads their values from a request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from pydantic import AliasChoices, BaseModel
from starlette.requests import Request

from ..errors import ConfigurationError
from .http import header_values

__all__ = ["RouteInputs", "input_values", "inputs_of", "route_inputs"]


@dataclass(frozen=True, slots=True)
class RouteInputs:
    """Lowercase header names and cookie names the endpoint declares (with sub-dependencies)."""

    headers: tuple[bytes, ...] = ()
    cookies: tuple[str, ...] = ()


def route_inputs(endpoint: Callable[..., Any]) -> RouteInputs:
    """The header and cookie inputs of `endpoint`; ConfigurationError for a body parameter or
    a parameter model (a key cannot name what they read)."""
    return inputs_of(get_dependant(path="", call=endpoint))


def inputs_of(dependant: Dependant) -> RouteInputs:
    """As `route_inputs`, from an analysis FastAPI already made (a route's `dependant`)."""
    headers: dict[bytes, None] = {}
    cookies: dict[str, None] = {}
    for current in _walk(dependant):
        for field in current.body_params:
            raise ConfigurationError(
                f"@cached_route: parameter {field.name!r} is read from the request body, which "
                "is not part of a cache key; a cached GET endpoint takes path, query, header "
                "and cookie parameters only (remove the parameter or the decorator)"
            )
        for field in current.header_params:
            headers.update(dict.fromkeys(name.encode("latin-1") for name in _names(field)))
        for field in current.cookie_params:
            cookies.update(dict.fromkeys(_names(field)))
    return RouteInputs(tuple(headers), tuple(cookies))


def input_values(
    request: Request,
    inputs: RouteInputs,
    vary_on: Sequence[str] | Callable[[Request], str] | None,
) -> list[tuple[bytes, Sequence[bytes]]]:
    """The values, in this request, of the declared header and cookie inputs and of `vary_on`
    (header names, or a function of the request), each under a name of its kind."""
    headers = request.scope["headers"]
    fields: list[tuple[bytes, Sequence[bytes]]] = []
    for name in inputs.headers:
        fields.append((b"h:" + name, header_values(headers, name)))
    for cookie in inputs.cookies:
        value = request.cookies.get(cookie)
        fields.append((b"c:" + cookie.encode(), () if value is None else (value.encode(),)))
    if callable(vary_on):
        fields.append((b"vary_on", (str(vary_on(request)).encode(),)))
    elif vary_on:
        for header in vary_on:
            name = header.lower().encode("latin-1")
            fields.append((b"h:" + name, header_values(headers, name)))
    return fields


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _walk(sub)


def _names(field: Any) -> list[str]:
    """Every request name FastAPI may read `field` from, lowercased. A superset is safe: a
    name that FastAPI does not read only makes keys more specific."""
    info = field.field_info
    if any(_is_model(kind) for kind in (info.annotation, *get_args(info.annotation))):
        raise ConfigurationError(
            f"@cached_route: parameter {field.name!r} is a header/cookie model; declare each "
            "header or cookie as its own Header()/Cookie() parameter so the cache key can "
            "include it, or pass key_func"
        )
    names = [field.name, field.alias or field.name]
    choices = info.validation_alias
    if isinstance(choices, str):
        names.append(choices)
    elif isinstance(choices, AliasChoices):
        names += [choice for choice in choices.choices if isinstance(choice, str)]
    elif choices is not None:
        raise ConfigurationError(
            f"@cached_route: parameter {field.name!r} uses a validation alias path; give it "
            "a plain alias so the cache key can include it, or pass key_func"
        )
    lowered = [name.lower() for name in names]
    return list(dict.fromkeys(lowered + [name.replace("_", "-") for name in lowered]))


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)
