"""CacheMiddleware at the ASGI level: called directly with hand-made scopes and a collecting
`send`, for what an HTTP client cannot show (message boundaries, errors, other scopes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from fastapi_cachekit import CacheService
from fastapi_cachekit.fastapi.middleware import CacheMiddleware
from tests.backend_kinds import new_backend
from tests.clock import FakeClock

from .middleware_support import T0, Collector, http_scope

FRESH = [(b"cache-control", b"max-age=60")]

pytestmark = pytest.mark.usefixtures("http_backend")


class Scripted:
    """A raw ASGI app that sends the given messages (raising where told) and counts calls."""

    def __init__(self, *messages: Message | Exception) -> None:
        self.messages = list(messages)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        for message in self.messages:
            if isinstance(message, Exception):
                raise message
            await send(message)


def start(headers: list[tuple[bytes, bytes]] = FRESH, **extra: Any) -> Message:
    return {"type": "http.response.start", "status": 200, "headers": headers, **extra}


def body(data: bytes, more: bool = False) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": more}


def middleware(app: Any, **options: Any) -> tuple[CacheMiddleware, FakeClock]:
    clock = FakeClock(T0)
    cache = CacheService(new_backend(clock))
    return CacheMiddleware(app, cache=cache, clock=clock, **options), clock


async def call(mw: CacheMiddleware, scope: dict[str, Any] | None = None) -> Collector:
    out = Collector()
    await mw(scope or http_scope(), out.receive, out.send)
    return out


async def test_lifespan_messages_pass_straight_through() -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            seen.append(message)
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return

    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    out = Collector()

    async def receive() -> Message:
        return inbox.pop(0)

    mw, _ = middleware(app)
    await mw({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, out.send)
    assert seen == [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    assert [m["type"] for m in out.messages] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


async def test_websocket_scopes_pass_straight_through() -> None:
    got: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.extend([scope, receive, send])

    mw, _ = middleware(app)
    scope = {"type": "websocket", "path": "/ws", "headers": []}
    out = Collector()
    await mw(scope, out.receive, out.send)
    assert got[0] is scope
    assert got[1] == out.receive
    assert got[2] == out.send


async def test_an_app_raising_before_the_response_start_propagates_and_stores_nothing() -> None:
    app = Scripted(RuntimeError("before"))
    mw, _ = middleware(app)
    out = Collector()
    with pytest.raises(RuntimeError, match="before"):
        await mw(http_scope(), out.receive, out.send)
    assert out.messages == []
    app.messages = [start(), body(b"ok")]
    assert (await call(mw)).body == b"ok"
    assert app.calls == 2


async def test_an_app_raising_after_the_response_start_propagates_and_stores_nothing() -> None:
    app = Scripted(start(), body(b"part", more=True), RuntimeError("after"))
    mw, _ = middleware(app)
    out = Collector()
    with pytest.raises(RuntimeError, match="after"):
        await mw(http_scope(), out.receive, out.send)
    assert [m["type"] for m in out.messages] == ["http.response.start", "http.response.body"]
    app.messages = [start(), body(b"whole")]
    assert (await call(mw)).body == b"whole"
    assert app.calls == 2


async def test_an_app_raising_before_start_while_revalidating_gets_stale_if_error() -> None:
    app = Scripted(start([(b"cache-control", b"max-age=10, stale-if-error=60")]), body(b"old"))
    mw, clock = middleware(app)
    await call(mw)
    app.messages = [RuntimeError("down")]
    clock.advance(20)
    out = await call(mw)
    assert out.body == b"old"
    assert b"detail=stale-if-error" in out.header(b"cache-status")[0]


async def test_a_streamed_response_keeps_its_message_boundaries_and_is_stored() -> None:
    app = Scripted(start(), body(b"a", more=True), body(b"b", more=True), body(b"c"))
    mw, _ = middleware(app)
    out = await call(mw)
    assert [m.get("body") for m in out.messages[1:]] == [b"a", b"b", b"c"]
    assert [m.get("more_body") for m in out.messages[1:]] == [True, True, False]
    assert out.header(b"etag") == []  # a stream starts before its ETag could be known
    hit = await call(mw)
    assert hit.body == b"abc"
    assert len(hit.header(b"etag")) == 1
    assert app.calls == 1


async def test_a_stream_with_a_declared_length_is_announced_as_stored() -> None:
    headers = [*FRESH, (b"content-length", b"2")]
    app = Scripted(start(headers), body(b"a", more=True), body(b"b"))
    mw, _ = middleware(app)
    out = await call(mw)
    assert out.header(b"cache-status") == [b"fastapi-cachekit; fwd=uri-miss; stored"]


async def test_an_incomplete_body_is_not_stored() -> None:
    app = Scripted(start([*FRESH, (b"content-length", b"10")]), body(b"short"))
    mw, _ = middleware(app)
    first = await call(mw)
    assert first.header(b"cache-status") == [b"fastapi-cachekit; fwd=uri-miss"]
    await call(mw)
    assert app.calls == 2


async def test_a_response_over_max_body_bytes_passes_through_unstored() -> None:
    chunks = [body(b"x" * 40, more=True) for _ in range(5)] + [body(b"")]
    app = Scripted(start(), *chunks)
    mw, _ = middleware(app, max_body_bytes=100)
    out = await call(mw)
    assert len(out.body) == 200
    assert len(out.messages) == 7
    await call(mw)
    assert app.calls == 2


async def test_a_start_without_a_body_is_passed_on() -> None:
    app = Scripted(start())
    mw, _ = middleware(app)
    out = await call(mw)
    assert [m["type"] for m in out.messages] == ["http.response.start"]
    assert out.header(b"cache-control") == [b"max-age=60"]


async def test_trailers_and_other_extension_messages_pass_through_and_store_nothing() -> None:
    trailers = {"type": "http.response.trailers", "headers": [(b"x-sum", b"1")]}
    app = Scripted(start(trailers=True), body(b"data"), trailers)
    mw, _ = middleware(app)
    out = await call(mw)
    assert out.messages[-1] == trailers
    assert out.start["trailers"] is True
    pathsend = {"type": "http.response.pathsend", "path": "/tmp/file"}
    app.messages = [start(), pathsend]
    out = await call(mw, http_scope("/file"))
    assert out.messages[-1] == pathsend
    await call(mw, http_scope("/file"))
    assert app.calls == 3


async def test_shutdown_waits_for_background_revalidations() -> None:
    app = Scripted(
        start([(b"cache-control", b"max-age=10, stale-while-revalidate=60")]), body(b"v1")
    )
    mw, clock = middleware(app)
    await call(mw)
    clock.advance(20)
    app.gate = asyncio.Event()
    stale = await call(mw)  # served at once; the revalidation waits at the gate
    assert stale.body == b"v1"
    delivered: list[str] = []

    async def lifespan_app(scope: Scope, receive: Receive, send: Send) -> None:
        delivered.append((await receive())["type"])

    mw.app = lifespan_app
    inbox = asyncio.Queue[Message]()
    inbox.put_nowait({"type": "lifespan.shutdown"})
    out = Collector()
    lifespan = asyncio.ensure_future(mw({"type": "lifespan"}, inbox.get, out.send))
    for _ in range(10):
        await asyncio.sleep(0)
    assert delivered == []  # the app hears of shutdown only after the revalidation
    app.gate.set()
    await asyncio.wait_for(lifespan, timeout=5)
    assert delivered == ["lifespan.shutdown"]
    assert app.calls == 2


async def test_drain_cancels_revalidations_that_outlast_the_timeout() -> None:
    app = Scripted(
        start([(b"cache-control", b"max-age=10, stale-while-revalidate=60")]), body(b"v1")
    )
    mw, clock = middleware(app)
    await call(mw)
    clock.advance(20)
    app.gate = asyncio.Event()  # never opened
    await call(mw)
    await mw.drain(timeout=0.01)
    assert (await call(mw)).body == b"v1"  # still stale-while-revalidate: a new attempt
    await mw.drain(timeout=0.01)
