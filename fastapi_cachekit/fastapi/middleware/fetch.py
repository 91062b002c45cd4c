"""Fetch: one request CacheMiddleware sends to the app (a miss, or a revalidation of a stored
response), made for one client request and dropped after it.

The app's `http.response.start` decides what happens to its response: `decide_storage` says
whether it may be stored; when revalidating (RFC 9111 §4.3), `decide_revalidation` says
whether the client gets the app's response or the stored one (a 304, stale on error), and
what is stored or removed. A response the client gets from the app goes through the `Relay`
this class extends (`relay.py`: the held-back start, the buffered body, the store), so the
phases of one request's ASGI messages stay one state machine over one object.
"""

from __future__ import annotations

import logging

from starlette.types import Message, Receive, Send

from ..http import (
    CacheControl,
    LookupDecision,
    Revalidation,
    StoragePlan,
    StoredResponse,
    decide_revalidation,
    decide_storage,
    hit_response,
    lowercase_names,
    request_cache_control,
    revalidation_headers,
    select_updated,
    without_conditionals,
)
from .asgi import ReplayReceive, RequestState, send_response
from .relay import ANSWERED, HOLDING, WAITING, Flight, Relay
from .store import Runtime

__all__ = ["Fetch", "Flight"]

logger = logging.getLogger("fastapi_cachekit.http")


class Fetch(Relay):
    """Sends `state`'s request to the app, answers the client, stores what may be stored.

    With `entry` it is a revalidation of that stored response (RFC 9111 §4.3): conditional
    headers are added and the app's answer is judged by `decide_revalidation`. `fwd` is the
    Cache-Status forward reason; `flight`, when given, is resolved with the storable response
    (or None) as soon as that is known, for the requests waiting on this one.
    """

    __slots__ = ("_entry", "_mismatch", "_request_time", "_response_time", "_stale_served")

    def __init__(
        self,
        rt: Runtime,
        state: RequestState,
        send: Send,
        *,
        fwd: str,
        entry: StoredResponse | None = None,
        flight: Flight | None = None,
    ) -> None:
        super().__init__(rt, state, send, fwd, flight)
        self._entry = entry
        self._mismatch = self._stale_served = False
        self._request_time = self._response_time = 0.0

    async def run(self, receive: Receive) -> None:
        """Call the app and see its response through."""
        state, entry = self._state, self._entry
        scope = state.scope
        if entry is not None:
            headers = revalidation_headers(state.headers, entry)
            scope = {**scope, "headers": headers, "method": "GET"}
        # Taken before the app runs: an invalidation from now on makes this response too old
        # to store.
        self._fill = await self._rt.cache.fill_token()
        self._request_time = self._rt.config.clock()
        try:
            await self._rt.app(scope, receive, self.send)
        except Exception:
            if self._stale_served or await self._stale_on_exception():
                # The client got the stale response instead of this error: log, do not raise
                # (Starlette's error middleware sends a 500, then re-raises).
                logger.warning(
                    "the app failed while revalidating %s; served the stale response",
                    state.scope["path"],
                    exc_info=True,
                )
                return
            raise
        if self._mismatch:
            await self._retry(receive)
        elif self._phase == HOLDING:  # a start and no body: pass it on, store nothing
            await self._release(stored=False)

    async def send(self, message: Message) -> None:
        """The `send` the app is given."""
        if self._phase == ANSWERED:
            return
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif kind == "http.response.body" and self._phase != WAITING:
            await self._on_body(message)
        else:  # an extension message (trailers, pathsend...): pass it on, store nothing
            self._give_up("extension")
            if self._phase == HOLDING:
                await self._release(stored=False)
            await self._send(message)

    # --- the response start --------------------------------------------------------------

    async def _on_start(self, message: Message) -> None:
        self._response_time = self._rt.config.clock()
        headers = lowercase_names(message.get("headers") or ())
        if self._entry is None:
            plan = self._storage_plan(message["status"], headers)
        else:
            plan = await self._revalidated(message["status"], headers)
            if self._phase == ANSWERED:
                return
        await self._hold_or_pass(message, plan)

    def _storage_plan(self, status: int, headers: list[tuple[bytes, bytes]]) -> StoragePlan | None:
        state, config = self._state, self._rt.config
        decision = decide_storage(
            state.method,
            state.headers,
            status,
            headers,
            policy=config.policy,
            request_time=self._request_time,
            response_time=self._response_time,
        )
        if decision.plan is None:
            self._why = decision.reason
        return decision.plan

    async def _revalidated(
        self, status: int, headers: list[tuple[bytes, bytes]]
    ) -> StoragePlan | None:
        """Act on the app's answer to a revalidation; the plan when it is a storable full
        response. Sets the phase to ANSWERED when the client got the stored response."""
        assert self._entry is not None
        rt, state = self._rt, self._state
        self._fwd_status = status
        decision = decide_revalidation(
            self._entry,
            status,
            headers,
            state.headers,
            policy=rt.config.policy,
            request_time=self._request_time,
            response_time=self._response_time,
            request_cc=self._request_directives(),
        )
        outcome = decision.outcome
        if decision.plan is None:
            self._why = decision.reason
        if outcome is Revalidation.UPDATED:
            assert decision.entry is not None
            assert decision.serve is not None
            await self._answer(decision.entry, decision.serve, stored=decision.plan is not None)
            if decision.plan is not None:
                self._resolve(decision.entry)
                await rt.put(state, decision.entry, decision.plan.storage_ttl, self._fill)
            else:
                await rt.storage.remove(rt.cache, state.storage_key)
        elif outcome is Revalidation.STALE_ON_ERROR:
            assert decision.serve is not None
            self._stale_served = True
            await self._answer(self._entry, decision.serve, detail=decision.reason)
        elif outcome is Revalidation.MISMATCH:
            other = await self._named_variant(headers)
            if other is not None:  # the 304 is about another stored variant: update that one
                self._entry = other
                return await self._revalidated(status, headers)
            self._phase, self._mismatch = ANSWERED, True  # drop this 304, ask again (_retry)
        elif outcome is Revalidation.REMOVED:
            await rt.storage.remove(rt.cache, state.storage_key)
        return decision.plan

    async def _named_variant(self, headers: list[tuple[bytes, bytes]]) -> StoredResponse | None:
        """The stored variant of this URL a mismatched 304 names by its validator (§4.3.4)."""
        entry, rt = self._entry, self._rt
        if entry is None or not entry.vary:
            return None
        variants = await rt.storage.variants(rt.cache, self._state.key)
        return select_updated((v for v in variants if v.etag != entry.etag), headers)

    def _request_directives(self) -> CacheControl | None:
        if not self._rt.config.policy.respect_request_cache_control:
            return None
        return request_cache_control(self._state.headers)

    # --- answering from the cache --------------------------------------------------------

    async def _answer(
        self,
        entry: StoredResponse,
        decision: LookupDecision,
        *,
        stored: bool = False,
        detail: str | None = None,
    ) -> None:
        """Answer the client with the stored response (the app's own answer is dropped).
        A `detail` says a stale response replaced a failure; its negative `ttl` says how stale."""
        self._phase = ANSWERED
        status = self._rt.config.status.forward(
            self._fwd,
            fwd_status=self._fwd_status,
            ttl=None if detail is None else decision.ttl,
            stored=stored,
            detail=detail,
        )
        if detail is None:
            self._tell("revalidated", self._fwd)
        else:
            self._tell("stale_served", detail)
        code, headers, body = hit_response(entry, decision, status, date=self._rt.config.send_date)
        await send_response(
            self._send, code, headers, b"" if self._state.method == "HEAD" else body
        )

    async def _stale_on_exception(self) -> bool:
        """After the app raised: serve the stale response if stale-if-error or the cache's
        `stale_on_error` window allows and the client has received nothing yet (RFC 5861 §4,
        RFC 9111 §4.2.4); True when it was served."""
        entry = self._entry
        if entry is None or self._phase not in (WAITING, HOLDING):
            return False
        decision = decide_revalidation(
            entry,
            500,
            (),
            self._state.headers,
            policy=self._rt.config.policy,
            request_time=self._request_time,
            response_time=self._rt.config.clock(),
            request_cc=self._request_directives(),
        )
        if decision.outcome is not Revalidation.STALE_ON_ERROR or decision.serve is None:
            return False
        self._give_up()
        await self._answer(entry, decision.serve, detail=decision.reason)
        return True

    async def _retry(self, receive: Receive) -> None:
        """The app's 304 did not match the stored response (§4.3.4): drop the stored one and
        ask again without any conditional, as a plain miss."""
        rt, state = self._rt, self._state
        await rt.storage.remove(rt.cache, state.storage_key)
        retry = state.replaced(without_conditionals(state.headers))
        fetch = Fetch(rt, retry, self._send, fwd=self._fwd, flight=self._flight)
        await fetch.run(ReplayReceive(receive))
