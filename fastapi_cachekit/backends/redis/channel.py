"""A pub/sub channel under the Redis backend's key prefix (the hybrid backend's announcements).

Each `Channel` object is one sender: it publishes on `{name}:{sender}` and subscribes, by
pattern, to the channel of every other sender, never its own (`others`), so a process does
not hear what it published itself. Hearing it would cost the process a read of its own
message for every write it makes (about as much as the write's own reply), only to skip it.

Publishing goes through the backend's connection: its breaker, its turns, its error
translation. A subscription holds a connection of its own (a subscribed connection can do
nothing else), made with the same settings, on the backend's node or another one; its errors
are translated the same way, into BackendUnavailable or BackendError. On a cluster a classic
PUBLISH reaches subscribers on every node, pattern subscribers included, so one subscription
on any node hears everything.

An `Announcement` rides along with a write or an invalidation: the script that changes the
data PUBLISHes it in the same atomic step (scripts.SET, invalidation_scripts.DELETE, ...), so
it costs no round trip of its own and is never heard before the change. Where no script of
the operation can carry it, the backend publishes it afterwards (`sent` says which).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import string
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple

from redis import exceptions as rx
from redis.asyncio.client import PubSub

from ...errors import BackendError, BackendUnavailable
from .connection import RedisConnection, close_client, translate_error
from .match import escape_match
from .scripts import NO_ANNOUNCEMENT

__all__ = [
    "Announcement",
    "Channel",
    "Heard",
    "Subscription",
    "mark_sent",
    "new_sender",
    "others",
    "publish_unsent",
    "script_args",
]

logger = logging.getLogger("fastapi_cachekit.redis")

SENDER_ALPHABET = string.digits + string.ascii_letters
SENDER_LENGTH = 8
"""A sender id: 8 of 62 characters (47 bits), so that two processes of a deployment do not
draw the same one (they would not hear each other), with one pattern per character."""


def new_sender() -> str:
    """A random sender id (`SENDER_LENGTH` characters of `SENDER_ALPHABET`)."""
    return "".join(secrets.choice(SENDER_ALPHABET) for _ in range(SENDER_LENGTH))


def others(name: str, sender: str) -> list[str]:
    """Patterns matching the channel `{name}:{id}` of every sender id but `sender`: one per
    position i, for the ids that first differ from `sender` there (so no channel matches two
    patterns, and no message is heard twice)."""
    prefix = escape_match(f"{name}:")
    return [
        f"{prefix}{sender[:i]}[^{sender[i]}]{'?' * (len(sender) - i - 1)}"
        for i in range(len(sender))
    ]


@dataclass
class Announcement:
    """A message for `channel` that the operation it describes publishes once it is done."""

    channel: str
    message: bytes
    sent: bool = False
    """Set once a script published it (else the backend publishes it when the call ends)."""

    @property
    def args(self) -> tuple[str, bytes]:
        """The channel and the message, as a script's ARGV takes them."""
        return self.channel, self.message


def script_args(announce: Announcement | None) -> tuple[str, bytes]:
    """The channel and message arguments of a script call that publishes `announce`."""
    return NO_ANNOUNCEMENT if announce is None else announce.args


def mark_sent(announce: Announcement | None) -> None:
    """Record that a script given `announce` reached the step that publishes it."""
    if announce is not None:
        announce.sent = True


async def publish_unsent(connection: RedisConnection, announce: Announcement | None) -> None:
    """Publish `announce` unless a script has: after an operation no single script completed."""
    if announce is None or announce.sent:
        return
    await _publish(connection, *announce.args)
    announce.sent = True


async def _publish(connection: RedisConnection, channel: str, message: bytes) -> None:
    """PUBLISH `message` on `channel`. A failure is logged, not raised: the operation it
    announces succeeded, and the tier that announces bounds how long its copies may outlive
    a lost announcement (the hybrid's `l1_max_ttl`)."""
    try:
        await connection.call(lambda client: client.publish(channel, message))
    except BackendError as exc:
        logger.debug("could not announce an invalidation: %s", exc)


class Heard(NamedTuple):
    """Something the channel delivered: a message's data, or None for the answer to a ping."""

    data: bytes | None


class Subscription:
    """A live subscription: receive what is published, ping to check that Redis answers."""

    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub

    async def receive(self, timeout: float) -> Heard | None:
        """The next message or pong, or None when nothing arrived within `timeout` seconds."""
        try:
            message = await self._pubsub.get_message(
                ignore_subscribe_messages=True, timeout=timeout
            )
        except (rx.RedisError, OSError) as exc:
            raise translate_error(exc) from exc
        if message is None:
            return None
        return Heard(message["data"] if message["type"] == "pmessage" else None)

    async def ping(self) -> None:
        """Ask Redis for a pong (`receive` returns it): a quiet channel's sign of life."""
        try:
            await self._pubsub.ping()
        except (rx.RedisError, OSError) as exc:
            raise translate_error(exc) from exc


class Channel:
    """One sender on the pub/sub channel `name`: it publishes on `Channel.own` and hears the
    other senders (see the module docstring)."""

    def __init__(
        self,
        connection: RedisConnection,
        name: str,
        subscribe_url: str | None = None,
        sender: str | None = None,
    ) -> None:
        self.name = name
        self.sender = new_sender() if sender is None else sender
        self.own = f"{name}:{self.sender}"
        self._connection = connection
        self._subscribe_url = subscribe_url

    def announcement(self, data: bytes) -> Announcement:
        """`data`, to be published by the operation it is given to (see `Announcement`)."""
        return Announcement(self.own, data)

    async def publish(self, data: bytes) -> None:
        """Send `data` to the other senders' subscriptions; a failure is logged, not raised
        (see `_publish`)."""
        await _publish(self._connection, self.own, data)

    @contextlib.asynccontextmanager
    async def subscribe(self, confirm_timeout: float) -> AsyncIterator[Subscription]:
        """A subscription to the other senders, once Redis has confirmed each of its patterns
        (BackendUnavailable if it does not within `confirm_timeout` seconds each); its
        connection closes on exit."""
        client = self._connection.single_node_client(self._subscribe_url)
        pubsub = client.pubsub()
        patterns = others(self.name, self.sender)
        try:
            try:
                await pubsub.psubscribe(*patterns)
                for _ in patterns:
                    confirmation = await pubsub.get_message(timeout=confirm_timeout)
                    if confirmation is None:  # a stalled Redis: connected, answering nothing
                        raise BackendUnavailable(
                            f"Redis did not confirm the subscription to {self.name} "
                            f"within {confirm_timeout}s"
                        )
            except (rx.RedisError, OSError) as exc:
                raise translate_error(exc) from exc
            yield Subscription(pubsub)
        finally:
            with contextlib.suppress(rx.RedisError, OSError):
                await pubsub.aclose()
            with contextlib.suppress(rx.RedisError, OSError):
                await close_client(client)
