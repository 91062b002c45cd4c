"""The hybrid backend's announcements: one invalidation per pub/sub message, as compact JSON,
and the `Announcer` through which a process makes them and reads those it hears.

A message is {"s": sender, "o": kind, "a": names}, plus "n" (the namespace) for a pattern:
kind "k" carries a list of keys, "n" a namespace, "t" a list of tags, "p" a pattern's source
and "c" (a clear) nothing. Any client of the Redis server can publish on the channel, so
`decode` trusts nothing: whatever is not exactly that shape is refused with the reason.
Every process hears its own announcements too, and skips them by their first bytes
(`sender_prefix`), without decoding them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import InvalidKeyError
from ..patterns import GlobPattern
from .redis import Announcement, Channel, Invalidation

__all__ = ["Announcer", "MalformedMessage", "decode", "encode", "sender_prefix"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

_MALFORMED_LOG_INTERVAL = 60.0

# An invalidation's kind on the channel (kept short: every write publishes one).
_CODES = {"key": "k", "namespace": "n", "tags": "t", "pattern": "p", "clear": "c"}
_KINDS = {code: kind for kind, code in _CODES.items()}


class MalformedMessage(ValueError):
    """A message on the invalidation channel that is not an announcement."""


def encode(sender: str, done: Invalidation) -> bytes:
    """The announcement of `done` by `sender` (`decode` reads it)."""
    message: dict[str, Any] = {"s": sender, "o": _CODES[done.kind], "a": list(done.names)}
    if done.kind == "namespace":  # a namespace or a pattern goes as one string
        message["a"] = done.names[0]
    elif done.kind == "pattern":
        message["a"], message["n"] = done.names[0], done.namespace
    return orjson.dumps(message)


def sender_prefix(sender: str) -> bytes:
    """How every announcement `encode` makes for `sender` begins: a process hears its own
    announcements too, and can tell them by this without decoding them."""
    return orjson.dumps({"s": sender})[:-1] + b","


def decode(data: bytes) -> tuple[str, Invalidation]:
    """The sender and the invalidation of an announcement; MalformedMessage if it is none."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("not JSON") from exc
    if not isinstance(message, dict):
        raise MalformedMessage(f"a JSON {type(message).__name__}, not an object")
    sender, code = message.get("s"), message.get("o")
    if not isinstance(sender, str):
        raise MalformedMessage("no sender ('s' must be a string)")
    kind = _KINDS.get(code) if isinstance(code, str) else None
    if kind is None:
        raise MalformedMessage(f"unknown kind {code!r} ('o' must be one of {sorted(_KINDS)})")
    names, namespace = message.get("a"), message.get("n")
    if kind == "clear":
        return sender, Invalidation("clear")
    if kind == "key":
        return sender, Invalidation("key", _strings(names))
    if kind == "tags":
        return sender, Invalidation("tags", _strings(names))
    if not isinstance(names, str):
        raise MalformedMessage(f"a {kind} announcement needs one string in 'a'")
    if kind == "namespace":
        return sender, Invalidation("namespace", (names,))
    if namespace is not None and not isinstance(namespace, str):
        raise MalformedMessage("a pattern's namespace ('n') must be a string or null")
    try:
        GlobPattern.compile(names)
    except InvalidKeyError as exc:
        raise MalformedMessage(f"bad pattern: {exc}") from exc
    return sender, Invalidation("pattern", (names,), namespace)


def _strings(names: object) -> tuple[str, ...]:
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise MalformedMessage("'a' must be a list of strings")
    return tuple(names)


class Announcer:
    """One process's voice on the invalidation channel: the announcements it makes, under a
    sender id of its own, and which of the messages it hears are other processes'
    invalidations. A message that is not an announcement is counted in `malformed` and
    logged (at most once a minute: anyone may publish on the channel)."""

    def __init__(self, channel: Channel, monotonic: Callable[[], float]) -> None:
        self._channel = channel
        self._monotonic = monotonic
        self._source = uuid.uuid4().hex
        self._own = sender_prefix(self._source)
        self.malformed = 0
        self._last_malformed_log = -_MALFORMED_LOG_INTERVAL

    def announcement(self, done: Invalidation) -> Announcement:
        """The announcement of `done`, for the L2 call that performs it to publish."""
        return self._channel.announcement(encode(self._source, done))

    async def publish(self, done: Invalidation) -> None:
        """Publish an announcement no L2 call carried: a replayed invalidation, a batch of
        writes.

        Publishes through the connection, not a backend method: this also runs inside the
        Redis backend's replay, which a backend method would wait for.
        """
        await self._channel.publish(encode(self._source, done))

    def heard(self, data: bytes) -> Invalidation | None:
        """The invalidation another process announced in `data`; None for this process's own
        announcements (applied already) and for messages that are not announcements."""
        if data.startswith(self._own):  # told apart without decoding
            return None
        try:
            sender, done = decode(data)
        except MalformedMessage as exc:
            self._malformed(data, exc)
            return None
        return None if sender == self._source else done

    def _malformed(self, data: bytes, exc: MalformedMessage) -> None:
        self.malformed += 1
        now = self._monotonic()
        if now - self._last_malformed_log >= _MALFORMED_LOG_INTERVAL:
            self._last_malformed_log = now
            logger.warning(
                "ignored a message on %s that is not a cache announcement (%s): %r",
                self._channel.name,
                exc,
                data[:100],
            )
