"""A real uvicorn server on a free port, run as a task of the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

__all__ = ["uvicorn_in_task"]


@contextlib.asynccontextmanager
async def uvicorn_in_task(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL. `config`: uvicorn.Config's."""
    options: dict[str, Any] = {"host": "127.0.0.1", "port": 0, "log_level": "warning"}
    server = uvicorn.Server(uvicorn.Config(app, **(options | config)))
    serving = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "uvicorn did not start"
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, timeout=10)
