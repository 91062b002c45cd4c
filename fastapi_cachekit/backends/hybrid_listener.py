"""The hybrid backend's listener: one subscription to the invalidation channel, kept alive, and
whether it can be trusted.

The channel is live while it is subscribed and has been heard from within `liveness` seconds:
a message, or the pong to the ping sent whenever it has been quiet for `heartbeat` seconds. A
stalled Redis keeps the connection open and delivers nothing, so announcements may be held up
for as long as it stays silent. A listener stopped by any error (the connection lost, or a
failure handling a message) reports the channel dead and subscribes again after a back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .redis import Channel, Subscription

__all__ = ["ChannelListener"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

_RETRY_FIRST = 0.05
_RETRY_MAX = 5.0


class ChannelListener:
    """Hands each message to `on_message`, each change of liveness to `on_live`, its end to
    `on_stopped`, and tells `on_heard` whenever Redis answered (a message or a pong)."""

    def __init__(
        self,
        channel: Channel,
        *,
        on_message: Callable[[bytes], Awaitable[None]],
        on_live: Callable[[bool], Awaitable[None]],
        on_heard: Callable[[], None],
        on_stopped: Callable[[], None],
        heartbeat: float,
        liveness: float,
        monotonic: Callable[[], float],
    ) -> None:
        if heartbeat >= liveness:
            raise ValueError(
                f"the heartbeat ({heartbeat}s) must be shorter than the liveness bound "
                f"({liveness}s), or a live channel would be taken for a silent one"
            )
        self._channel = channel
        self._on_message = on_message
        self._on_live = on_live
        self._on_heard = on_heard
        self._on_stopped = on_stopped
        self.heartbeat = heartbeat
        self.liveness = liveness
        self._monotonic = monotonic
        self.live = False
        self._last_heard = 0.0
        self._task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[None] | None = None

    @property
    def started(self) -> bool:
        """Whether a listener runs: it ends with its event loop (when `asyncio.run` returns,
        say), and the next loop that uses the backend starts its own."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start listening; returns once the first subscription attempt has settled."""
        loop = asyncio.get_running_loop()
        self._first_attempt = loop.create_future()
        self._task = loop.create_task(self._listen_forever())
        await asyncio.shield(self._first_attempt)

    async def ensure_started(self) -> None:
        """Start listening unless a listener runs (see `started`)."""
        if not self.started:
            await self.start()

    async def close(self) -> None:
        """Stop listening (whatever stopped the listener, if anything did) and disconnect."""
        task, self._task = self._task, None
        self.live = False
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _listen_forever(self) -> None:
        try:
            await self._subscribe_again_and_again()
        finally:
            # Ended with its event loop (or by close()): nothing is heard from here on, and a
            # listener started later reports liveness afresh (which clears the memory tier).
            self.live = False
            self._on_stopped()

    async def _subscribe_again_and_again(self) -> None:
        backoff = _RETRY_FIRST
        while True:
            try:
                async with self._channel.subscribe(self.heartbeat) as subscription:
                    backoff = _RETRY_FIRST
                    await self._heard()
                    self._settle()
                    await self._receive(subscription)
            except Exception as exc:  # any error: reported dead, then subscribed again
                if self.live:
                    logger.warning("cache invalidation channel lost (%r)", exc)
                await self._set_live(False)
            self._settle()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _RETRY_MAX)

    async def _receive(self, subscription: Subscription) -> None:
        while True:
            heard = await subscription.receive(self.heartbeat)
            if heard is None:  # a quiet channel: is Redis still there?
                await self._check_liveness()
                await subscription.ping()
                continue
            await self._heard()
            if heard.data is not None:
                await self._on_message(heard.data)

    async def _heard(self) -> None:
        self._last_heard = self._monotonic()
        self._on_heard()
        await self._set_live(True)

    async def _check_liveness(self) -> None:
        silent = self._monotonic() - self._last_heard
        if self.live and silent > self.liveness:
            logger.warning("cache invalidation channel silent for %.1fs", silent)
            await self._set_live(False)

    async def _set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            await self._on_live(live)

    def _settle(self) -> None:
        if self._first_attempt is not None and not self._first_attempt.done():
            self._first_attempt.set_result(None)
