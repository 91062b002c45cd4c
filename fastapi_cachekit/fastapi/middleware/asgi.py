"""ASGI plumbing for CacheMiddleware: reading a request scope, sending a whole response, and
the `receive` callables of requests the cache makes on its own behalf."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from ..http import HeaderList, request_key

__all__ = [
    "EMPTY_REQUEST",
    "BackgroundReceive",
    "ReplayReceive",
    "RequestState",
    "ShutdownReceive",
    "discard",
    "request_host",
    "send_response",
]

EMPTY_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}


def request_host(scope: Scope) -> str:
    """The request's Host (the server address when the header is missing)."""
    for name, value in scope["headers"]:
        if name == b"host":
            return str(value.decode("latin-1"))
    server = scope.get("server")
    if server:
        host, port = server
        return f"{host}:{port}" if port is not None else str(host)
    return ""


async def send_response(send: Send, status: int, headers: HeaderList, body: bytes) -> None:
    """Send a complete response in two messages."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def discard(message: Message) -> None:
    """The `send` of a background request: nobody is waiting for its response."""


class ReplayReceive:
    """`receive` for a second app call in one request: the body was read by the first call,
    so an empty one is replayed; later calls (disconnect detection) go to the real one."""

    __slots__ = ("_receive", "_replayed")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._replayed = False

    async def __call__(self) -> Message:
        if self._replayed:
            return await self._receive()
        self._replayed = True
        return EMPTY_REQUEST


class BackgroundReceive:
    """`receive` for a background revalidation: an empty request, then nothing, ever.

    Never reporting a disconnect matters: Starlette streams a response only while its client
    is connected, and this request's "client" is the cache.
    """

    __slots__ = ("_sent",)

    def __init__(self) -> None:
        self._sent = False

    async def __call__(self) -> Message:
        if not self._sent:
            self._sent = True
            return EMPTY_REQUEST
        await asyncio.Event().wait()  # cancelled with the task that waits
        raise AssertionError("unreachable")  # pragma: no cover


class ShutdownReceive:
    """A lifespan's `receive` that runs `before_shutdown` before the app hears of shutdown."""

    __slots__ = ("_before_shutdown", "_receive")

    def __init__(self, receive: Receive, before_shutdown: Callable[[], Awaitable[None]]) -> None:
        self._receive = receive
        self._before_shutdown = before_shutdown

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] == "lifespan.shutdown":
            await self._before_shutdown()
        return message


class RequestState:
    """A GET/HEAD request that got past the hit path: its scope and its keys.

    `key` is the primary key (default or `key_func`); `storage_key` where the response for
    this request lives (the key itself, or the variant key when the stored response varies).
    """

    __slots__ = ("_request", "headers", "key", "method", "scope", "storage_key")

    def __init__(
        self,
        scope: Scope,
        key: str,
        storage_key: str,
        request: Request | None = None,
    ) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.headers: HeaderList = scope["headers"]
        self.key = key
        self.storage_key = storage_key
        self._request = request

    def request(self) -> Request:
        """A Starlette Request for the user's `key_func`/`tags_func` (made once)."""
        if self._request is None:
            self._request = Request(self.scope)
        return self._request

    def url_hash(self) -> str:
        """The hash of the request's canonical URL (also its default key)."""
        scope = self.scope
        return request_key(
            scope.get("scheme", "http"),
            request_host(scope),
            scope["path"],
            scope.get("query_string", b""),
        )

    def replaced(self, headers: HeaderList, method: str | None = None) -> RequestState:
        """The same request with other headers (and method) for a call the cache makes."""
        scope: dict[str, Any] = dict(self.scope)
        scope["headers"] = headers
        if method is not None:
            scope["method"] = method
        return RequestState(scope, self.key, self.storage_key, self._request)
