"""Coordination between requests of one CacheMiddleware: single flight and background
revalidation (stale-while-revalidate). Both are per-process; the stored responses they
produce are shared through the service like any other."""

from __future__ import annotations

import asyncio
import logging

from starlette.types import Receive, Send

from ..http import Action, LookupDecision, StoredResponse, decide_lookup, hit_response
from .asgi import BackgroundReceive, RequestState, discard, send_response
from .fetch import Fetch, Flight
from .store import Runtime
from .telling import tell

__all__ = ["BackgroundRevalidations", "Flights", "serve_stored"]

logger = logging.getLogger("fastapi_cachekit.http")


async def serve_stored(
    state: RequestState,
    entry: StoredResponse,
    decision: LookupDecision,
    cache_status: bytes,
    send: Send,
    *,
    date: bool,
) -> None:
    """Answer `state`'s request with a stored response (no body for a HEAD); `date`: with
    the stored Date (see `hit_response`)."""
    status, headers, body = hit_response(entry, decision, cache_status, date=date)
    await send_response(send, status, headers, b"" if state.method == "HEAD" else body)


class Flights:
    """Concurrent fetches of one storage key, collapsed into one (single flight).

    The first request (the leader) fetches; the others (followers) wait for the response it
    stores and are answered from it, when the lookup rules let it answer them. When the
    leader's response cannot be stored, or the leader fails, each follower fetches alone.
    """

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}

    def get(self, storage_key: str) -> Flight | None:
        """The fetch in flight for this key, if any."""
        return self._flights.get(storage_key)

    async def lead(
        self,
        rt: Runtime,
        state: RequestState,
        revalidate: StoredResponse | None,
        fwd: str,
        receive: Receive,
        send: Send,
    ) -> None:
        """Fetch for every request of this key that arrives until the response is stored."""
        key = state.storage_key
        flight: Flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            await Fetch(rt, state, send, fwd=fwd, entry=revalidate, flight=flight).run(receive)
        finally:
            if not flight.done():
                flight.set_result(None)
            # Removed only now, after the store: a request arriving before the store finished
            # shares the flight's response instead of missing the cache and fetching again.
            if self._flights.get(key) is flight:
                del self._flights[key]

    @staticmethod
    async def follow(
        rt: Runtime,
        state: RequestState,
        flight: Flight,
        fwd: str,
        receive: Receive,
        send: Send,
    ) -> None:
        """Wait for the leader's response; fetch alone when it cannot answer this request."""
        entry = await asyncio.shield(flight)  # a client that leaves must not cancel the flight
        if entry is not None:
            config = rt.config
            decision = decide_lookup(entry, state.headers, policy=config.policy, now=config.clock())
            if decision.action is Action.SERVE:
                status = config.status.forward(fwd, collapsed=True)
                await serve_stored(state, entry, decision, status, send, date=config.send_date)
                tell(rt, state.scope, "coalesced", fwd, state.storage_key)
                return
        await Fetch(rt, state, send, fwd=fwd).run(receive)


class BackgroundRevalidations:
    """Revalidations running after a stale response was served (RFC 5861 §3): at most one
    per stored response, each a tracked task, so that shutdown can wait for them (`drain`)."""

    __slots__ = ("_keys", "_tasks")

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, rt: Runtime, state: RequestState, entry: StoredResponse) -> None:
        """Revalidate `entry` in the background unless that is already under way."""
        if state.storage_key in self._keys:
            return
        self._keys.add(state.storage_key)
        background = state.replaced(state.headers, method="GET")  # a HEAD's too: GETs store
        task = asyncio.get_running_loop().create_task(self._run(rt, background, entry))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, rt: Runtime, state: RequestState, entry: StoredResponse) -> None:
        try:
            await Fetch(rt, state, discard, fwd="stale", entry=entry).run(BackgroundReceive())
        except Exception:
            logger.warning(
                "background revalidation of %s failed; the stored response is kept",
                state.scope["path"],
                exc_info=True,
            )
        finally:
            self._keys.discard(state.storage_key)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for the running revalidations; cancel those left after `timeout` seconds."""
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
