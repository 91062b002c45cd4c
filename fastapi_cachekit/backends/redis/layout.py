"""Where the Redis backend keeps things: key names, cluster shards, and the value envelope.

Every key starts with "{key_prefix}:". A shard is a key prefix whose keys one Lua script may
touch together: on a single node the one shard is "{key_prefix}:"; on a cluster there are
`CLUSTER_SHARDS` shards "{key_prefix}:{tag}:", each tag a Redis hash tag chosen so that the
shards spread evenly over the 16384 slots. Keys of a shard (after its prefix):

    e:{full key}   the entry: an envelope (below), with Redis expiry (PX) as a backstop
    x              zset full key -> expires_at ms (+inf: never); the shard's entry list
    c              zset full key -> created_at ms (oldest/newest in stats)
    n:{ns} t:{tag} sets of full keys: the namespace and tag indexes
    N:{ns} T:{tag} an index being invalidated in chunks (renamed from n:/t:)
    f:{full key}   the claim of the process computing a missing entry (SET NX PX)
    X              the expiry index being drained by clear()
    reg            zset "n:{ns}" / "t:{tag}" -> when the index's last member expires (ms)
    inv, invp      the invalidation log: zset label ("k:{full key}", "n:{ns}", "t:{tag}", "*"
                   for a clear) -> its last invalidation's number; patterns ([ns, prefix])
    logm           hash: "since" (the log holds every invalidation numbered after it), "last"

The entry lists, the registry and each index expire with their longest-lived member, and
writes trim their dead members (see scripts.SET). Keys shared by all shards:
"{key_prefix}:seq" (the invalidation sequence), ":stats" (hits and misses of every process),
":lock:cleanup".
"""

from __future__ import annotations

import asyncio
import math
import struct
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import NamedTuple, TypeVar

import orjson
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ...errors import ConfigurationError

__all__ = [
    "CLUSTER_SHARDS",
    "HEADER_SIZE",
    "Envelope",
    "Layout",
    "RedisEntry",
    "Shard",
    "expiry",
    "open_entry",
    "open_envelope",
    "pack_envelope",
    "texts",
    "write_labels",
]

T = TypeVar("T")

CLUSTER_SHARDS = 16
"""Shards of a cluster layout: invalidations fan out to all of them, so keep it small."""

_MAGIC = b"CK\x01"
_HEADER = struct.Struct(">ddI")
_unpack_header = _HEADER.unpack_from
HEADER_SIZE = len(_MAGIC) + _HEADER.size
"""Bytes before the metadata: magic, created ms, expires ms, metadata length."""


class Envelope(NamedTuple):
    """The header of a stored value; `expires_ms` is inf for an entry that never expires.

    A tuple, as it is made on every read: cheaper than a (frozen) dataclass.
    """

    created_ms: float
    expires_ms: float
    value_offset: int


def pack_envelope(
    value: bytes, created_ms: float, expires_ms: float, namespace: str | None, tags: Sequence[str]
) -> bytes:
    """The stored form of `value`: header, metadata (namespace and tags), then the value."""
    meta = orjson.dumps([namespace or "", *tags])
    return b"".join((_MAGIC, _HEADER.pack(created_ms, expires_ms, len(meta)), meta, value))


def expiry(now: float, ttl: float | None) -> tuple[float, int | str]:
    """The envelope's expiry (ms; inf: never) and Redis' own PX, never before it ("": none)."""
    if ttl is None:
        return math.inf, ""
    return (now + ttl) * 1000.0, max(1, math.ceil(ttl * 1000.0))


def write_labels(namespace: str | None, tags: Sequence[str]) -> list[str]:
    """The index labels of an entry: "n:{namespace}" first if any, then "t:{tag}" each."""
    labels = [f"n:{namespace}"] if namespace else []
    labels += [f"t:{tag}" for tag in tags]
    return labels


def open_envelope(raw: bytes, *, header_only: bool = False) -> Envelope | None:
    """The header of `raw`, or None when `raw` is not an envelope (foreign or corrupt).

    `header_only`: `raw` is just the first HEADER_SIZE bytes of the stored value.
    """
    if raw[:3] != _MAGIC or len(raw) < HEADER_SIZE:
        return None
    created, expires, meta_size = _unpack_header(raw, 3)
    offset = HEADER_SIZE + meta_size
    # `x != x`: NaN, which no envelope holds.
    if (offset > len(raw) and not header_only) or created != created or expires != expires:
        return None
    return Envelope(created, expires, offset)


class RedisEntry(NamedTuple):
    """A stored entry as read by `RedisBackend.get_entry`."""

    value: bytes
    expires_at: float | None
    namespace: str | None
    tags: tuple[str, ...]


def open_entry(raw: bytes, envelope: Envelope) -> RedisEntry | None:
    """The entry an opened envelope holds, with its expiry (seconds; None: never) and
    labels, or None when its metadata is corrupt."""
    try:
        labels = orjson.loads(raw[HEADER_SIZE : envelope.value_offset])
    except orjson.JSONDecodeError:
        return None
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        return None
    expires = None if math.isinf(envelope.expires_ms) else envelope.expires_ms / 1000.0
    return RedisEntry(raw[envelope.value_offset :], expires, labels[0] or None, tuple(labels[1:]))


@dataclass(frozen=True)
class Shard:
    """The keys of one shard (see the module docstring)."""

    prefix: str

    @cached_property
    def prefix_bytes(self) -> bytes:
        """`prefix`, encoded once (redis-py would encode it on every call)."""
        return self.prefix.encode()

    def entry(self, full_key: str) -> str:
        return f"{self.prefix}e:{full_key}"

    def index(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def lock(self, full_key: str) -> str:
        return f"{self.prefix}f:{full_key}"

    def drain(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind.upper()}:{name}"

    @property
    def expiries(self) -> str:
        return f"{self.prefix}x"

    @property
    def created(self) -> str:
        return f"{self.prefix}c"

    @property
    def clearing(self) -> str:
        """The expiry index being drained by a clear."""
        return f"{self.prefix}X"

    @property
    def registry(self) -> str:
        return f"{self.prefix}reg"

    @property
    def log_meta(self) -> str:
        return f"{self.prefix}logm"

    @property
    def log(self) -> str:
        return f"{self.prefix}inv"

    @property
    def pattern_log(self) -> str:
        return f"{self.prefix}invp"

    @cached_property
    def write_keys(self) -> tuple[str, ...]:
        """The keys a SET_MANY call may touch besides the entries' and the indexes', made once
        (a SET declares only those it touches: `scripts.set_call`)."""
        return (
            self.expiries,
            self.created,
            self.registry,
            self.log_meta,
            self.log,
            self.pattern_log,
        )

    def structures(self) -> list[str]:
        """The shard's own keys, in the order the STATS script takes them."""
        return [
            self.expiries,
            self.created,
            self.registry,
            self.log_meta,
            self.log,
            self.pattern_log,
            self.clearing,
        ]


@dataclass(frozen=True)
class Layout:
    """The key names of one backend: its shards and its shared keys."""

    base: str
    shards: tuple[Shard, ...]

    @classmethod
    def of(cls, key_prefix: str, cluster: bool) -> Layout:
        """The layout of `key_prefix` (ConfigurationError if it cannot be one)."""
        if not key_prefix:
            raise ConfigurationError("key_prefix must not be empty (CACHEKIT_KEY_PREFIX)")
        if not cluster:
            return cls.single(key_prefix)
        if "{" in key_prefix or "}" in key_prefix:
            raise ConfigurationError(
                f"key_prefix {key_prefix!r} contains a brace, which would change the cluster "
                "hash slot of every key: choose a prefix without '{' or '}'"
            )
        return cls.cluster(key_prefix)

    @classmethod
    def single(cls, key_prefix: str) -> Layout:
        base = f"{key_prefix}:"
        return cls(base, (Shard(base),))

    @classmethod
    def cluster(cls, key_prefix: str) -> Layout:
        base = f"{key_prefix}:"
        return cls(base, tuple(Shard(f"{base}{{{tag}}}:") for tag in _shard_tags(CLUSTER_SHARDS)))

    def shard_of(self, full_key: str) -> Shard:
        if len(self.shards) == 1:
            return self.shards[0]
        return self.shards[zlib.crc32(full_key.encode()) % len(self.shards)]

    @property
    def sequence(self) -> str:
        return f"{self.base}seq"

    @property
    def stats(self) -> str:
        return f"{self.base}stats"

    @property
    def cleanup_lock(self) -> str:
        return f"{self.base}lock:cleanup"

    async def each_shard(self, op: Callable[[Shard], Awaitable[T]]) -> list[T]:
        """`op` on every shard, concurrently; the first error is raised once all finished."""
        if len(self.shards) == 1:
            return [await op(self.shards[0])]
        results = await asyncio.gather(*map(op, self.shards), return_exceptions=True)
        values: list[T] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            values.append(result)
        return values


def texts(names: list[bytes] | None) -> list[str]:
    """Key names or labels as Redis returns them (bytes), as text."""
    return [name.decode() for name in names or ()]


@lru_cache(maxsize=4)
def _shard_tags(count: int) -> tuple[str, ...]:
    """Hash tags whose slots fall in `count` equal slot ranges, one tag per range, so that a
    cluster whose masters own contiguous ranges gets its share of the shards."""
    tags = []
    for shard in range(count):
        low = shard * REDIS_CLUSTER_HASH_SLOTS // count
        high = (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // count
        candidate = 0
        while not low <= key_slot(str(candidate).encode()) < high:
            candidate += 1
        tags.append(str(candidate))
    return tuple(tags)
