"""A hit carries exactly one Date (RFC 9110 §6.6.1: Date is a singleton) and an Age that says
how old it is (RFC 9111 §5.1), under real servers over a real socket: uvicorn and hypercorn
in this process, granian in its own. uvicorn and hypercorn add a Date to every response, so
a hit leaves the stored one out; granian adds one only when the response has none."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from fastapi_cachekit.fastapi.http import format_http_date, parse_http_date

from .middleware_support import Harness, Origin
from .server_date_app import T0, make_app
from .uvicorn_task import uvicorn_in_task

ROOT = Path(__file__).resolve().parents[2]


def uvicorn_server(server_date: bool = True) -> contextlib.AbstractAsyncContextManager[str]:
    return uvicorn_in_task(make_app(server_date=server_date))


@contextlib.asynccontextmanager
async def hypercorn_server() -> AsyncIterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # clients queue until hypercorn accepts: no start-up race
    port = listener.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns (and closes) it now
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    serving = asyncio.ensure_future(
        hypercorn_serve(make_app(), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(serving, timeout=10)


@contextlib.asynccontextmanager
async def granian_server() -> AsyncIterator[str]:
    with socket.socket() as probe:  # a free port for the child to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-log"]
    command.append("tests.fastapi.server_date_app:make_app")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, env=env, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await _wait_for_port(port, child)
        yield f"http://127.0.0.1:{port}"
    finally:
        child.terminate()
        await asyncio.wait_for(child.wait(), timeout=10)


async def _wait_for_port(port: int, child: asyncio.subprocess.Process) -> None:
    for _ in range(1000):
        assert child.returncode is None, "granian did not start"
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.01)
    raise AssertionError("granian did not listen")


SERVERS = {"uvicorn": uvicorn_server, "hypercorn": hypercorn_server, "granian": granian_server}


@pytest.mark.parametrize("server", sorted(SERVERS))
async def test_rfc9110_6_6_1_a_hit_has_exactly_one_date_and_a_correct_age(server: str) -> None:
    async with SERVERS[server]() as url, httpx.AsyncClient(base_url=url) as client:
        miss = await client.get("/page")
        await client.post("/clock/42")
        hit = await client.get("/page")
    assert "stored" in miss.headers["cache-status"]
    assert "; hit" in hit.headers["cache-status"]
    assert hit.headers["age"] == "42"
    dates = hit.headers.get_list("date")
    assert len(dates) == 1, dates
    # The server's own Date (the time of sending), not the stored one from T0.
    assert parse_http_date(dates[0]) != T0


async def test_rfc9110_6_6_1_without_server_date_uvicorn_sends_two_dates() -> None:
    """Why `server_date` is on by default: uvicorn adds its Date to the stored one."""
    async with uvicorn_server(server_date=False) as url, httpx.AsyncClient(base_url=url) as c:
        await c.get("/page")
        hit = await c.get("/page")
    assert len(hit.headers.get_list("date")) == 2


async def test_rfc9110_6_6_1_without_a_server_the_hit_replays_the_stored_date() -> None:
    async with Harness(Origin().app, server_date=False) as h:
        await h.get()
        h.clock.advance(7)
        hit = await h.get()
    assert hit.headers.get_list("date") == [format_http_date(h.clock.now - 7).decode()]
    assert hit.headers["age"] == "7"
