"""Where a task stands, to force an interleaving without sleeping."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any


async def waiting_on_a_future(task: asyncio.Task[Any]) -> None:
    """Return once `task` is suspended on a future itself (a `get_or_set_async` caller
    waiting on a flight), rather than inside a coroutine it awaits (a backend call)."""
    coro = task.get_coro()
    while True:
        awaiting = getattr(coro, "cr_await", None)
        if awaiting is not None and not inspect.iscoroutine(awaiting):
            return
        assert not task.done(), "the task finished instead of waiting"
        await asyncio.sleep(0)  # one turn of the loop: lets a backend reply arrive
