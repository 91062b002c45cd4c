"""Helpers for the CacheMiddleware tests: a configurable origin app, a harness wiring the
middleware to a memory-backed service and a fake clock, and a collecting ASGI `send`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from fastapi_cachekit import CacheService
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from tests.backend_kinds import new_backend
from tests.clock import FakeClock

T0 = 1_700_000_000.0
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Endpoint = Callable[[Request], Awaitable[Response]]


class Origin:
    """A Starlette app answering every path with the response its attributes describe, and
    recording the requests that reached it (the middleware's misses)."""

    def __init__(
        self,
        body: bytes = b"hello",
        *,
        status: int = 200,
        headers: Sequence[tuple[str, str]] = (("cache-control", "max-age=60"),),
    ) -> None:
        self.body = body
        self.status = status
        self.headers = list(headers)
        self.requests: list[Request] = []
        self.app = Starlette(routes=[Route("/{path:path}", self.endpoint, methods=ALL_METHODS)])

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        response = Response(self.body, status_code=self.status)
        response.raw_headers.extend((k.encode(), v.encode()) for k, v in self.headers)
        return response

    @property
    def calls(self) -> int:
        return len(self.requests)

    def seen(self, name: str) -> list[str | None]:
        """The value of request header `name` in each request that reached the app."""
        return [request.headers.get(name) for request in self.requests]


class Harness:
    """CacheMiddleware around `app`, with its own memory-backed service and fake clock."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        self.clock = FakeClock(T0)
        self.cache = CacheService(new_backend(self.clock))
        options.setdefault("cache", self.cache)
        options.setdefault("server_date", False)  # no server here adds a Date
        self.middleware = CacheMiddleware(app, clock=self.clock, **options)
        transport = httpx.ASGITransport(app=self.middleware)
        self.client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def get(self, path: str = "/", **headers: str) -> httpx.Response:
        return await self.client.get(path, headers=_headers(headers))

    async def head(self, path: str = "/", **headers: str) -> httpx.Response:
        return await self.client.head(path, headers=_headers(headers))

    async def request(self, method: str, path: str = "/", **headers: str) -> httpx.Response:
        return await self.client.request(method, path, headers=_headers(headers))

    async def __aenter__(self) -> Harness:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.middleware.drain()
        await self.client.aclose()
        await self.cache.close()


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


def cache_status(response: httpx.Response) -> str:
    return str(response.headers.get("cache-status", ""))


def is_hit(response: httpx.Response) -> bool:
    return "; hit" in cache_status(response)


def http_scope(path: str = "/", method: str = "GET", **headers: str) -> dict[str, Any]:
    """A hand-made ASGI HTTP scope."""
    raw = [(b"host", b"testserver")]
    raw += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw,
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }


class Collector:
    """A `send` that records messages, and a `receive` with an empty request body."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    async def receive(self) -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    @property
    def start(self) -> Message:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.messages
        return starts[0]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages if m["type"].endswith("body"))

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.start["headers"] if key == name]
