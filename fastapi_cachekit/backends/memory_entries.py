"""The memory backend's entries: a value with its times and labels, what it costs, and the
refusal of one that costs more than the byte bound on its own.

The cost is an estimate of the bytes an entry holds, kept as a running total by the backend
so that its byte bound costs one comparison per write.
"""

from __future__ import annotations

import logging
import time

from ..events import key_hash

__all__ = ["Entry", "LabelledEntry", "Refusals", "entry_size", "new_entry", "sized"]

logger = logging.getLogger("fastapi_cachekit.memory")
_REFUSAL_LOG_INTERVAL = 60.0  # seconds between two warnings about values too big to store

# Bytes one entry costs beyond the characters of its key and the bytes of its value: the
# ordered-dict slot and link node, the Entry object, the str and bytes object headers
# (sys.getsizeof("") == 49 for an ASCII key, sys.getsizeof(b"") == 33), and one index-set slot
# per namespace/tag membership. Measured with tracemalloc (tests/backends/test_memory.py
# checks the estimate against it). len() instead of sys.getsizeof(), which costs several
# times more on every write: the same figure for ASCII keys, a little low for other keys.
_ENTRY_OVERHEAD = 200 + 49 + 33
_INDEX_MEMBER = 80


class Entry:
    """A stored value and its times, with neither a namespace nor tags (most entries).

    Two slots smaller than a LabelledEntry: 16 bytes less for each such entry, which is most
    of them. Its `namespace` and `tags` are the class-level defaults below.
    """

    __slots__ = ("created_at", "expires_at", "value")
    namespace: str | None = None
    tags: tuple[str, ...] = ()

    def __init__(self, value: bytes, created_at: float, expires_at: float | None) -> None:
        self.value = value
        self.created_at = created_at
        self.expires_at = expires_at

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def size(self, key: str) -> int:
        return entry_size(key, len(self.value), self.namespace, self.tags)


def entry_size(key: str, value_size: int, namespace: str | None, tags: tuple[str, ...]) -> int:
    """The bytes an entry costs, by the estimate above."""
    memberships = len(tags) + (namespace is not None)
    return _ENTRY_OVERHEAD + len(key) + value_size + memberships * _INDEX_MEMBER


class LabelledEntry(Entry):
    """An entry with a namespace or tags (its slots take over from Entry's defaults)."""

    __slots__ = ("namespace", "tags")

    def __init__(
        self,
        value: bytes,
        created_at: float,
        expires_at: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
    ) -> None:
        super().__init__(value, created_at, expires_at)
        self.namespace = namespace
        self.tags = tags


def new_entry(
    value: bytes,
    created_at: float,
    expires_at: float | None,
    namespace: str | None,
    tags: tuple[str, ...],
) -> Entry:
    if namespace is None and not tags:
        return Entry(value, created_at, expires_at)
    return LabelledEntry(value, created_at, expires_at, namespace, tags)


def sized(value: bytes) -> bytes:
    """A copy of `value` sized to fit: orjson hands out bytes with a buffer of 4 KiB or more
    behind them, which a long-lived cache entry would otherwise keep alive. Formatting makes
    the copy in half the time b"".join takes."""
    return b"%b" % value


class Refusals:
    """The values not stored because each entry alone costs more than `max_memory_bytes`:
    counted, and logged at most once a minute (each one names a key hash, never a value)."""

    def __init__(self, max_memory_bytes: int | None) -> None:
        self.count = 0
        self._bound = max_memory_bytes
        self._last_log = -_REFUSAL_LOG_INTERVAL

    def refuse(self, key: str, size: int) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_log >= _REFUSAL_LOG_INTERVAL:
            self._last_log = now
            logger.warning(
                "a value (key hash %s) was not cached: its entry takes %d bytes, more than "
                "max_memory_bytes=%d (CACHEKIT_MAX_MEMORY_BYTES); raise the bound or cache "
                "smaller values",
                key_hash(key),
                size,
                self._bound,
                extra={"cache_key_hash": key_hash(key), "cache_outcome": "not_stored"},
            )
