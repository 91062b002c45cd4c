"""A TCP proxy in the test's event loop, to cut one client off Redis while others stay on.

Stopping the server would drop every client, including the other processes' subscriptions
(which then clear their L1s by themselves); a proxy makes a partition between one backend and
Redis only. `cut()` aborts the connections through it and refuses new ones until `restore()`;
`drop_replies()` lets requests through but loses what the server answers (the server does the
work, the client times out not knowing it was done).
Only asyncio clients may use it: a blocking client in the same thread would stall the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["TcpProxy"]

_HOST = "127.0.0.1"


class TcpProxy:
    """Forwards connections from `url` (a free port of its own) to a server on `target_port`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.open = True
        self.replying = True
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._relays: set[asyncio.Task[object]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"redis://{_HOST}:{self._server.sockets[0].getsockname()[1]}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, _HOST, 0)

    def cut(self) -> None:
        """Drop every connection now, and refuse new ones (a reset, as from a dead link)."""
        self.open = False
        for transport in list(self._transports):
            transport.abort()

    def drop_replies(self) -> None:
        """From now on the server's answers are lost on the way back, until `restore()`."""
        self.replying = False

    def restore(self) -> None:
        self.open = True
        self.replying = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.gather(*self._relays)  # cut: each ends as its transports close

    async def _relay(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        if not self.open:
            client_out.transport.abort()
            return
        relay = asyncio.current_task()
        assert relay is not None
        self._relays.add(relay)
        relay.add_done_callback(self._relays.discard)
        try:
            server_in, server_out = await asyncio.open_connection(_HOST, self.target_port)
        except OSError:
            client_out.transport.abort()
            return
        ends = (client_out.transport, server_out.transport)
        if not self.open:  # cut while connecting
            for transport in ends:
                transport.abort()
            return
        self._transports.update(ends)
        try:
            # Either side closing (or `cut`) ends both directions.
            pumps = [
                asyncio.create_task(_pump(client_in, server_out, lambda: True)),
                asyncio.create_task(_pump(server_in, client_out, lambda: self.replying)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for transport in ends:
                transport.abort()
            await asyncio.gather(*pumps)
        finally:
            self._transports.difference_update(ends)


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, passing: Callable[[], bool]
) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(65536):
            if passing():
                sink.write(data)
                await sink.drain()
