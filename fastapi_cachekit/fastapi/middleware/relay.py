"""Relay: the app's response on its way to the client, kept for the cache on the way.

The response start is held back while the response may still be stored, until the first body
message: a body that arrives whole can then be given its generated ETag and an exact
Cache-Status. A streamed body is passed on message by message and buffered up to the plan's
size, never further; the client gets every message as the app sent it. The whole body is then
stored, the requests waiting on the flight are given the storable response (or None as soon
as there is none), and the observers are told the outcome once, with the Cache-Status.

`Fetch` (`fetch.py`) is the Relay that runs the app and decides, at the response start,
whether there is anything to keep (a storage plan, or the answer to a revalidation).
"""

from __future__ import annotations

import asyncio
from typing import TypeAlias

from starlette.types import Message, Send

from ...events import EventKind
from ...service import FillToken
from ..http import StoragePlan, StoredResponse
from .asgi import RequestState, discard
from .store import Runtime
from .telling import tell

__all__ = ["ANSWERED", "HOLDING", "PASSING", "WAITING", "Flight", "Relay"]

Flight: TypeAlias = "asyncio.Future[StoredResponse | None]"
"""A single-flight fetch: resolves to the storable response, or None when there is none."""

# The phases of one response.
WAITING = 0  # nothing from the app yet
HOLDING = 1  # the response start is held back until its first body message
PASSING = 2  # the start went to the client; body messages follow it
ANSWERED = 3  # the client was answered from the cache; the app's messages are dropped


class Relay:
    """Passes one response of the app to `send` and stores it when the plan allows.

    `fwd` is the Cache-Status forward reason; `flight`, when given, is resolved with the
    storable response (or None) as soon as that is known.
    """

    __slots__ = (
        "_chunks",
        "_fill",
        "_flight",
        "_fwd",
        "_fwd_status",
        "_phase",
        "_plan",
        "_rt",
        "_send",
        "_size",
        "_start",
        "_state",
        "_why",
    )

    def __init__(
        self, rt: Runtime, state: RequestState, send: Send, fwd: str, flight: Flight | None
    ) -> None:
        self._rt = rt
        self._state = state
        self._send = send
        self._fwd = fwd
        self._flight = flight
        self._phase = WAITING
        self._start: Message | None = None
        self._plan: StoragePlan | None = None
        self._chunks: list[bytes] | None = None
        self._size = 0
        self._fwd_status: int | None = None  # the app's status, when revalidating
        self._fill: FillToken | None = None  # taken before the app runs (by the Fetch)
        self._why: str | None = None  # why the response is not stored, once known

    async def _hold_or_pass(self, message: Message, plan: StoragePlan | None) -> None:
        """Hold the start back when the response may be stored; else send it on."""
        if plan is None or message.get("trailers"):
            self._give_up("trailers" if plan is not None else None)
            self._phase = PASSING
            await self._send(self._with_status(message, stored=False))
        else:
            self._plan, self._start, self._chunks, self._phase = plan, message, [], HOLDING

    async def _on_body(self, message: Message) -> None:
        body: bytes = message.get("body", b"")
        more: bool = message.get("more_body", False)
        plan = self._plan
        if self._phase == HOLDING:
            assert plan is not None
            if not more:  # the whole body in one message: the usual, non-streamed response
                entry = plan.entry(body)
                if entry is None:
                    self._why = (
                        "body-too-large" if not plan.accepts_size(len(body)) else "incomplete"
                    )
                await self._release(stored=entry is not None, entry=entry)
                await self._send(message)
                await self._finish(entry)
                return
            # Streaming: the client gets the start now; only a declared length that fits
            # (decide_storage checked it) lets Cache-Status promise "stored".
            await self._release(stored=plan.content_length is not None)
        chunks = self._chunks
        if chunks is not None and plan is not None:
            self._size += len(body)
            if plan.accepts_size(self._size):
                chunks.append(body)
            else:
                self._give_up("body-too-large")
        await self._send(message)
        if not more and self._chunks is not None and plan is not None:
            self._chunks = None
            await self._finish(plan.entry(b"".join(chunks or ())))

    async def _release(self, *, stored: bool, entry: StoredResponse | None = None) -> None:
        """Send the held-back start, with the generated ETag (when the body is known) and
        Cache-Status."""
        start, self._start = self._start, None
        self._phase = PASSING
        assert start is not None
        message = self._with_status(start, stored=stored)
        if entry is not None and entry.etag_generated:
            message["headers"].insert(-1, (b"etag", entry.etag))
        await self._send(message)

    def _with_status(self, message: Message, *, stored: bool) -> Message:
        """A copy of a start message with Cache-Status appended (every other line kept);
        the observers are told the same outcome."""
        value = self._rt.config.status.forward(
            self._fwd, fwd_status=self._fwd_status, stored=stored
        )
        headers = [*(message.get("headers") or ()), (b"cache-status", value)]
        if stored:
            self._tell("stored", self._fwd)
        else:
            self._tell("not_stored", self._why or "incomplete")
        return {**message, "headers": headers}

    def _tell(self, kind: EventKind, reason: str | None) -> None:
        """Tell a client's outcome; a background revalidation has no client (its stale
        response was told when it was served)."""
        if self._send is not discard:
            tell(self._rt, self._state.scope, kind, reason, self._state.storage_key)

    async def _finish(self, entry: StoredResponse | None) -> None:
        """The whole body went to the client: store the response when it is complete."""
        self._resolve(entry)
        if entry is not None and self._plan is not None:
            await self._rt.put(self._state, entry, self._plan.storage_ttl, self._fill)

    def _give_up(self, why: str | None = None) -> None:
        """Nothing of this response will be stored (`why`, unless a reason is known
        already: the first one found is the cause): stop buffering, release the waiters."""
        self._why = self._why or why
        self._chunks = None
        self._resolve(None)

    def _resolve(self, entry: StoredResponse | None) -> None:
        flight = self._flight
        if flight is not None and not flight.done():
            flight.set_result(entry)
