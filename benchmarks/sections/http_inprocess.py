"""Section `http`: requests in-process, one app per row, through two drivers.

- httpx's ASGITransport (the client FastAPI apps are tested with; its own ~0.2 ms per request
  is part of every row, the floor included, which compresses the ratios);
- a direct ASGI call with a hand-made scope and a collecting `send`: no client at all, so the
  µs per request are the app's own cost and the ratios show the stacks' full weight.

Floor: a pure ASGI app sending constant bytes. Each cached row is first checked to serve a
hit (its hit header), so a misconfigured cache cannot pass for a fast one. The middleware's
row is repeated with a no-op observer on its service: what being observed costs.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message

from ..apps import APPS, FLOOR, PATH, AppSpec, make_middleware_app
from ..harness import Case, Row, compare, measure_plan, unavailable_row
from .common import NoOpObserver
from .http_common import check_hit

__all__ = ["run"]

DIRECT = " · direct ASGI call"


@dataclass(frozen=True)
class Params:
    requests: int
    direct_requests: int
    repeats: int


def make_observed_middleware_app() -> FastAPI:
    """The middleware row's app, its service observed by a no-op observer."""
    app = make_middleware_app()
    (middleware,) = app.user_middleware
    middleware.kwargs["cache"].add_observer(NoOpObserver())
    return app


MIDDLEWARE = next(spec for spec in APPS if spec.factory is make_middleware_app)
OBSERVED = dataclasses.replace(
    MIDDLEWARE,
    name=MIDDLEWARE.name + ", a no-op observer",
    factory=make_observed_middleware_app,
    compare_with=MIDDLEWARE.name,
)
SPECS = [*APPS, OBSERVED]

FULL = Params(requests=3000, direct_requests=20_000, repeats=5)
QUICK = Params(requests=30, direct_requests=100, repeats=2)


def _httpx_case(spec: AppSpec, client: httpx.AsyncClient, requests: int) -> Case:
    async def run(n: int) -> None:
        for _ in range(n):
            response = await client.get(PATH)
            if response.status_code != 200:
                raise RuntimeError(f"{spec.name}: status {response.status_code}")

    baseline = None if spec.name == FLOOR else FLOOR
    return Case(spec.name, run, requests, baseline, "httpx ASGITransport", min(requests, 100))


def _scope() -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench.local"), (b"accept", b"*/*")],
        "server": ("bench.local", 80),
        "client": ("127.0.0.1", 50000),
    }


def _direct_case(spec: AppSpec, app: ASGIApp, requests: int) -> Case:
    scope = _scope()
    request: Message = {"type": "http.request", "body": b"", "more_body": False}
    sent: list[Message] = []

    async def receive() -> Message:
        return request

    async def send(message: Message) -> None:
        sent.append(message)

    async def run(n: int) -> None:
        for _ in range(n):
            sent.clear()
            await app(dict(scope), receive, send)
            if sent[0].get("status") != 200:
                raise RuntimeError(f"{spec.name}: sent {sent[0]!r}")

    baseline = None if spec.name == FLOOR else FLOOR + DIRECT
    return Case(spec.name + DIRECT, run, requests, baseline, "no client", min(requests, 100))


async def run(quick: bool) -> list[Row]:
    params = QUICK if quick else FULL
    via_httpx: list[Case | Row] = []
    direct: list[Case | Row] = []
    async with contextlib.AsyncExitStack() as stack:
        for spec in SPECS:
            reason = spec.unavailable()
            if reason is not None:
                via_httpx.append(unavailable_row(spec.name, reason))
                direct.append(unavailable_row(spec.name + DIRECT, reason))
                continue
            app = spec.factory()
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url="http://bench.local")
            await stack.enter_async_context(client)
            await check_hit(client, spec, in_process=True)
            via_httpx.append(_httpx_case(spec, client, params.requests))
            direct.append(_direct_case(spec, app, params.direct_requests))
        rows = await measure_plan([*via_httpx, *direct], params.repeats)
    for spec in SPECS:
        if spec.compare_with is not None:
            compare(rows, spec.name, spec.compare_with)
            compare(rows, spec.name + DIRECT, spec.compare_with + DIRECT)
    return rows
