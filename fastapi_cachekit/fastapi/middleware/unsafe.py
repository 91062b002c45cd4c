"""Unsafe requests for CacheMiddleware: invalidation (RFC 9111 §4.4), and storing a POST
response that names its own target in Content-Location for later GETs (RFC 9110 §9.3.3)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import Message, Scope, Send

from ...service import FillToken
from ..http import (
    StoragePlan,
    TargetURL,
    decide_post_storage,
    invalidation_targets,
    lowercase_names,
    post_content_target,
)
from .asgi import RequestState, request_host
from .store import Runtime

__all__ = ["Invalidator"]

logger = logging.getLogger("fastapi_cachekit.http")


class Invalidator:
    """The `send` of an unsafe request (POST, PUT, PATCH, DELETE...).

    A 2xx/3xx response start first removes the stored responses of the target URL and of
    same-origin Location and Content-Location, then goes to the client: a client that reads
    after this response never sees the old ones. Every message passes unchanged. A POST
    response that may answer later GETs of its target is stored once its body is complete.
    """

    __slots__ = ("_post", "_request_time", "_rt", "_scope", "_send")

    def __init__(self, rt: Runtime, scope: Scope, send: Send) -> None:
        self._rt = rt
        self._scope = scope
        self._send = send
        self._request_time = rt.config.clock()
        self._post: PostCapture | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
            scope = self._scope
            headers = lowercase_names(message.get("headers") or ())
            targets = invalidation_targets(
                scope["method"],
                message["status"],
                scope.get("scheme", "http"),
                request_host(scope),
                scope["path"],
                scope.get("query_string", b""),
                headers,
            )
            await self._rt.storage.invalidate(self._rt.cache, targets, self._keys(targets))
            if scope["method"] == "POST":
                self._post = await self._capture(message["status"], headers)
        elif (
            message["type"] == "http.response.body"
            and self._post is not None
            and await self._post.on_body(message)
        ):
            self._post = None  # stored, or given up
        await self._send(message)

    async def _capture(self, status: int, headers: list[tuple[bytes, bytes]]) -> PostCapture | None:
        """A capture of this POST response when it may answer later GETs of its target."""
        scope, rt = self._scope, self._rt
        target = post_content_target(
            scope.get("scheme", "http"),
            request_host(scope),
            scope["path"],
            scope.get("query_string", b""),
            headers,
        )
        if target is None:
            return None
        plan = decide_post_storage(
            scope["headers"],
            status,
            headers,
            policy=rt.config.policy,
            request_time=self._request_time,
            response_time=rt.config.clock(),
        ).plan
        keys = self._keys([target]) if rt.config.key_func is not None else [target.key]
        if plan is None or not keys:
            return None
        state = RequestState({**scope, "method": "GET"}, keys[0], keys[0])
        # Taken after this request's own invalidation, which would otherwise refuse the store.
        return PostCapture(rt, state, plan, await rt.cache.fill_token())

    def _keys(self, targets: list[TargetURL]) -> list[str]:
        """With a key_func: the keys GET requests for the targets would have (with this
        request's headers), so a key that several URLs share goes whichever one is written."""
        key_func = self._rt.config.key_func
        if key_func is None:
            return []
        keys: list[str] = []
        for target in targets:
            scope = {**self._scope, "method": "GET", "path": target.path}
            scope["query_string"] = target.query
            scope.pop("raw_path", None)
            try:
                keys.append(key_func(Request(scope)))
            except Exception:
                logger.exception("CacheMiddleware key_func failed for %s", target.path)
        return keys


class PostCapture:
    """Buffers a storable POST response's body (up to `max_body_bytes`) and stores it as the
    response to a GET of its target when it is complete."""

    __slots__ = ("_chunks", "_fill", "_plan", "_rt", "_size", "_state")

    def __init__(
        self, rt: Runtime, state: RequestState, plan: StoragePlan, fill: FillToken | None
    ) -> None:
        self._rt, self._state, self._plan, self._fill = rt, state, plan, fill
        self._chunks: list[bytes] = []
        self._size = 0

    async def on_body(self, message: Message) -> bool:
        """Take one body message; True when the capture is over (stored or given up)."""
        body: bytes = message.get("body", b"")
        self._size += len(body)
        if not self._plan.accepts_size(self._size):
            return True
        self._chunks.append(body)
        if message.get("more_body", False):
            return False
        entry = self._plan.entry(b"".join(self._chunks))
        if entry is not None:
            await self._rt.put(self._state, entry, self._plan.storage_ttl, self._fill)
        return True
