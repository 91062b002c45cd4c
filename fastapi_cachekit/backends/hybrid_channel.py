"""The hybrid backend's announcements: one invalidation per pub/sub message, as compact JSON,
and the `Announcer` through which a process makes them and reads those it hears.

A message is {"o": kind, "a": names}, plus "n" (the namespace) for a pattern: kind "k"
carries a list of keys, "n" a namespace, "t" a list of tags, "p" a pattern's source and "c"
(a clear) nothing. Any client of the Redis server can publish on the channel, so `decode`
trusts nothing: whatever is not exactly that shape is refused with the reason. A process
never hears its own announcements (the channel's subscription leaves them out), so whatever
it hears is another process's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import InvalidKeyError
from ..patterns import GlobPattern
from .redis import Announcement, Channel, Invalidation

__all__ = ["Announcer", "MalformedMessage", "decode", "encode"]

logger = logging.getLogger("fastapi_cachekit.hybrid")

_MALFORMED_LOG_INTERVAL = 60.0

# An invalidation's kind on the channel (kept short: every write publishes one).
_CODES = {"key": "k", "namespace": "n", "tags": "t", "pattern": "p", "clear": "c"}
_KINDS = {code: kind for kind, code in _CODES.items()}


class MalformedMessage(ValueError):
    """A message on the invalidation channel that is not an announcement."""


def encode(done: Invalidation) -> bytes:
    """The announcement of `done` (`decode` reads it)."""
    message: dict[str, Any] = {"o": _CODES[done.kind], "a": list(done.names)}
    if done.kind == "namespace":  # a namespace or a pattern goes as one string
        message["a"] = done.names[0]
    elif done.kind == "pattern":
        message["a"], message["n"] = done.names[0], done.namespace
    return orjson.dumps(message)


def decode(data: bytes) -> Invalidation:
    """The invalidation an announcement carries; MalformedMessage if it is none."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage("not JSON") from exc
    if not isinstance(message, dict):
        raise MalformedMessage(f"a JSON {type(message).__name__}, not an object")
    code = message.get("o")
    kind = _KINDS.get(code) if isinstance(code, str) else None
    if kind is None:
        raise MalformedMessage(f"unknown kind {code!r} ('o' must be one of {sorted(_KINDS)})")
    names, namespace = message.get("a"), message.get("n")
    if kind == "clear":
        return Invalidation("clear")
    if kind == "key":
        return Invalidation("key", _strings(names))
    if kind == "tags":
        return Invalidation("tags", _strings(names))
    if not isinstance(names, str):
        raise MalformedMessage(f"a {kind} announcement needs one string in 'a'")
    if kind == "namespace":
        return Invalidation("namespace", (names,))
    if namespace is not None and not isinstance(namespace, str):
        raise MalformedMessage("a pattern's namespace ('n') must be a string or null")
    try:
        GlobPattern.compile(names)
    except InvalidKeyError as exc:
        raise MalformedMessage(f"bad pattern: {exc}") from exc
    return Invalidation("pattern", (names,), namespace)


def _strings(names: object) -> tuple[str, ...]:
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise MalformedMessage("'a' must be a list of strings")
    return tuple(names)


class Announcer:
    """One process's voice on the invalidation channel: the announcements it makes, and which
    of the messages it hears are other processes' invalidations. A message that is not an
    announcement is counted in `malformed` and logged (at most once a minute: anyone may
    publish on the channel)."""

    def __init__(self, channel: Channel, monotonic: Callable[[], float]) -> None:
        self._channel = channel
        self._monotonic = monotonic
        self.malformed = 0
        self._last_malformed_log = -_MALFORMED_LOG_INTERVAL

    def announcement(self, done: Invalidation) -> Announcement:
        """The announcement of `done`, for the L2 call that performs it to publish."""
        return self._channel.announcement(encode(done))

    async def publish(self, done: Invalidation) -> None:
        """Publish an announcement no L2 call carried: a replayed invalidation, a batch of
        writes.

        Publishes through the connection, not a backend method: this also runs inside the
        Redis backend's replay, which a backend method would wait for.
        """
        await self._channel.publish(encode(done))

    def heard(self, data: bytes) -> Invalidation | None:
        """The invalidation another process announced in `data`; None for a message that is
        not an announcement."""
        try:
            return decode(data)
        except MalformedMessage as exc:
            self._malformed(data, exc)
            return None

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
