"""Turns to call Redis: at most `max_connections` calls at once, the rest wait in line.

redis-py's plain connection pools do not wait; waiting here, first come first served, costs
far less per call than its BlockingConnectionPool.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["Turns"]


class Turns:
    """`free` turns to call Redis; a caller without one waits in line (first come, first
    served). Taking a free turn is `free -= 1` inline, so the common case costs no call."""

    __slots__ = ("_line", "free")

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._line: deque[asyncio.Future[bool]] = deque()

    async def wait(self, timeout: float) -> bool:
        """Wait until a released turn is handed to this caller (True), or `timeout` s (False:
        no turn taken)."""
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[bool] = loop.create_future()
        self._line.append(turn)
        timer = loop.call_later(timeout, _expire, turn)
        try:
            return await turn
        except BaseException:
            if turn.done() and not turn.cancelled() and turn.result():
                self.release()  # handed a turn while being cancelled: pass it on
            else:
                turn.cancel()  # release() skips it
            raise
        finally:
            timer.cancel()

    def release(self) -> None:
        """Give a turn back: to the first caller in line, if any."""
        line = self._line
        while line:
            turn = line.popleft()
            if not turn.done():
                turn.set_result(True)
                return
        self.free += 1


def _expire(turn: asyncio.Future[bool]) -> None:
    if not turn.done():
        turn.set_result(False)
