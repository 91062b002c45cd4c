"""Invalidation by unsafe requests (RFC 9111 §4.4) for CacheMiddleware."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.types import Message, Scope, Send

from ..http import TargetURL, invalidation_targets, lowercase_names
from .asgi import request_host
from .store import Runtime

__all__ = ["Invalidator"]

logger = logging.getLogger("fastapi_cachekit")


class Invalidator:
    """The `send` of an unsafe request (POST, PUT, PATCH, DELETE...).

    A 2xx/3xx response start first removes the stored responses of the target URL and of
    same-origin Location and Content-Location, then goes to the client: a client that reads
    after this response never sees the old ones. Every message passes unchanged.
    """

    __slots__ = ("_rt", "_scope", "_send")

    def __init__(self, rt: Runtime, scope: Scope, send: Send) -> None:
        self._rt = rt
        self._scope = scope
        self._send = send

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 200 <= message["status"] < 400:
            scope = self._scope
            targets = invalidation_targets(
                scope["method"],
                message["status"],
                scope.get("scheme", "http"),
                request_host(scope),
                scope["path"],
                scope.get("query_string", b""),
                lowercase_names(message.get("headers") or ()),
            )
            await self._rt.storage.invalidate(self._rt.cache, targets, self._keys(targets))
        await self._send(message)

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
