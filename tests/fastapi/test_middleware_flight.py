"""CacheMiddleware: single flight. Concurrent misses on one key run the app once and all get
its response; when that response cannot be shared, the waiting requests fetch for themselves.
The app is gated by an asyncio.Event, so every request is waiting before the first finishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .middleware_support import Harness, Origin, cache_status, is_hit

pytestmark = pytest.mark.usefixtures("http_backend")


class Gated(Origin):
    """An origin whose responses wait for `gate`; `entered` is set by the first request."""

    def __init__(self, headers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.response_headers = {"cache-control": "max-age=60"} if headers is None else headers
        self.fail_first = False

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        self.entered.set()
        await self.gate.wait()
        if self.fail_first and self.calls == 1:
            raise RuntimeError("the first call fails")
        body = f"response {self.calls}".encode()
        return Response(body, headers=self.response_headers)


async def all_looked_up(h: Harness, origin: Gated, n: int) -> None:
    """Wait until `n` requests have looked the key up (and so led or joined the flight).

    Counting lookups, not event-loop turns, keeps this exact on backends with real I/O."""
    done, looked_up = asyncio.Event(), 0
    lookup = h.cache.get_raw

    async def counted(*args: Any, **kwargs: Any) -> bytes | None:
        nonlocal looked_up
        try:
            return await lookup(*args, **kwargs)
        finally:
            looked_up += 1
            if looked_up >= n:
                done.set()

    h.cache.get_raw = counted  # type: ignore[method-assign]
    await origin.entered.wait()
    await done.wait()
    for _ in range(10):  # from the lookup to joining the flight is a few steps, no I/O
        await asyncio.sleep(0)
    h.cache.get_raw = lookup  # type: ignore[method-assign]


async def concurrently(h: Harness, origin: Gated, n: int, **headers: str) -> list[httpx.Response]:
    """`n` concurrent GETs; the gate opens once every request has reached the flight."""
    waiting = asyncio.ensure_future(all_looked_up(h, origin, n))
    await asyncio.sleep(0)
    tasks = [asyncio.ensure_future(h.get("/", **headers)) for _ in range(n)]
    await waiting
    origin.gate.set()
    return list(await asyncio.gather(*tasks, return_exceptions=False))


async def test_concurrent_misses_run_the_app_once_and_share_its_response() -> None:
    origin = Gated()
    async with Harness(origin.app) as h:
        responses = await concurrently(h, origin, 20)
        after = await h.get()
    assert origin.calls == 1
    assert {r.content for r in responses} == {b"response 1"}
    statuses = sorted(cache_status(r) for r in responses)
    assert statuses.count("fastapi-cachekit; fwd=uri-miss; stored") == 1
    assert statuses.count("fastapi-cachekit; fwd=uri-miss; collapsed") == 19
    assert is_hit(after)


async def test_concurrent_requests_for_a_stale_response_revalidate_it_once() -> None:
    origin = Gated({"cache-control": "max-age=10", "etag": '"v1"'})
    async with Harness(origin.app) as h:
        origin.gate.set()
        await h.get()
        origin.gate.clear()
        origin.entered.clear()
        h.clock.advance(11)
        responses = await concurrently(h, origin, 10)
    assert origin.calls == 2
    assert origin.seen("if-none-match") == [None, '"v1"']
    assert {r.content for r in responses} == {b"response 2"}  # the revalidation's full answer
    statuses = [cache_status(r) for r in responses]
    assert statuses.count("fastapi-cachekit; fwd=stale; fwd-status=200; stored") == 1
    assert statuses.count("fastapi-cachekit; fwd=stale; collapsed") == 9


async def test_without_single_flight_every_miss_runs_the_app() -> None:
    origin = Gated()
    async with Harness(origin.app, single_flight=False) as h:
        await concurrently(h, origin, 5)
    assert origin.calls == 5


async def test_followers_fetch_themselves_when_the_response_cannot_be_stored() -> None:
    origin = Gated({"cache-control": "no-store"})
    async with Harness(origin.app) as h:
        responses = await concurrently(h, origin, 5)
    assert origin.calls == 5
    assert len({r.content for r in responses}) == 5


async def test_followers_fetch_themselves_when_the_leader_fails() -> None:
    origin = Gated()
    origin.fail_first = True
    async with Harness(origin.app) as h:
        waiting = asyncio.ensure_future(all_looked_up(h, origin, 4))
        await asyncio.sleep(0)
        tasks = [asyncio.ensure_future(h.get()) for _ in range(4)]
        await waiting
        origin.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1
    assert origin.calls == 4  # the leader, then each follower on its own (no second flight)


async def test_requests_that_may_be_personal_do_not_join_a_flight() -> None:
    origin = Gated({"cache-control": "public, max-age=60"})
    async with Harness(origin.app) as h:
        leader = asyncio.ensure_future(h.get())
        await origin.entered.wait()
        personal = asyncio.ensure_future(h.get(authorization="Bearer x"))
        for _ in range(2000):  # until it reaches the app: it must not wait for the leader
            if origin.calls == 2:
                break
            await asyncio.sleep(0.001)
        assert origin.calls == 2  # the authorized request went straight to the app
        origin.gate.set()
        await asyncio.gather(leader, personal)


async def test_a_head_shares_a_get_in_flight() -> None:
    origin = Gated()
    async with Harness(origin.app) as h:
        waiting = asyncio.ensure_future(all_looked_up(h, origin, 2))
        await asyncio.sleep(0)
        get = asyncio.ensure_future(h.get())
        await origin.entered.wait()
        head = asyncio.ensure_future(h.head())
        await waiting
        origin.gate.set()
        responses = await asyncio.gather(get, head)
    assert origin.calls == 1
    assert responses[1].content == b""
    assert responses[1].headers["content-length"] == str(len(b"response 1"))


async def test_a_follower_with_another_variant_fetches_itself() -> None:
    origin = Gated({"cache-control": "max-age=60", "vary": "accept-language"})
    async with Harness(origin.app) as h:
        waiting = asyncio.ensure_future(all_looked_up(h, origin, 2))
        await asyncio.sleep(0)
        english = asyncio.ensure_future(h.get(accept_language="en"))
        await origin.entered.wait()
        french = asyncio.ensure_future(h.get(accept_language="fr"))
        await waiting
        origin.gate.set()
        await asyncio.gather(english, french)
        hits = [await h.get(accept_language=lang) for lang in ("en", "fr")]
    assert origin.calls == 2
    assert all(is_hit(r) for r in hits)


async def test_a_cancelled_follower_does_not_cancel_the_flight() -> None:
    origin = Gated()
    async with Harness(origin.app) as h:
        waiting = asyncio.ensure_future(all_looked_up(h, origin, 3))
        await asyncio.sleep(0)
        leader = asyncio.ensure_future(h.get())
        await origin.entered.wait()
        follower = asyncio.ensure_future(h.get())
        other = asyncio.ensure_future(h.get())
        await waiting
        follower.cancel()
        origin.gate.set()
        responses = await asyncio.gather(leader, other)
        with pytest.raises(asyncio.CancelledError):
            await follower
    assert origin.calls == 1
    assert responses[0].content == responses[1].content


class Streaming(Origin):
    """The first response streams 120 bytes, then stalls until `stall` is set; later ones
    are small."""

    def __init__(self) -> None:
        super().__init__()
        self.stall = asyncio.Event()
        self.entered = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        yield b"x" * 60
        yield b"x" * 60
        await self.stall.wait()
        yield b"end"

    async def endpoint(self, request: Request) -> Response:
        self.requests.append(request)
        self.entered.set()
        headers = {"cache-control": "max-age=60"}
        if self.calls == 1:
            return StreamingResponse(self.chunks(), headers=headers)
        return Response(b"small", headers=headers)


async def test_a_stream_over_max_body_bytes_releases_the_followers_at_once() -> None:
    """The leader's stream crosses the limit (100) and then stalls: the followers must not
    wait for its end (nothing is buffered past the limit, and nothing will be stored)."""
    origin = Streaming()
    async with Harness(origin.app, max_body_bytes=100) as h:
        leader = asyncio.ensure_future(h.get())
        await origin.entered.wait()
        follower = await asyncio.wait_for(h.get(), timeout=5)
        assert follower.content == b"small"  # fetched alone while the leader still streams
        origin.stall.set()
        streamed = await leader
    assert streamed.content == b"x" * 120 + b"end"
    assert cache_status(streamed) == "fastapi-cachekit; fwd=uri-miss"


async def test_a_response_computed_before_an_invalidation_is_not_stored() -> None:
    """No stale write-back: a miss in flight while its key is invalidated is not stored."""
    origin = Gated()
    async with Harness(origin.app) as h:
        first = asyncio.ensure_future(h.get())
        await origin.entered.wait()
        await h.cache.clear_all()  # e.g. the data behind the page changed meanwhile
        origin.gate.set()
        assert (await first).content == b"response 1"
        second = await h.get()
    assert origin.calls == 2
    assert second.content == b"response 2"
