"""Where CacheMiddleware keeps responses: primary keys, Vary variants, tags and the URL index.

Layout in the middleware's namespace, through the service API only (so every backend works
and every process sees the same thing):

- A response without Vary is stored under its primary key K (the default request key or
  `key_func`'s result): the hit path is one read.
- A response with `Vary: A, B` is stored under a variant key `K|v:<hash of the request's
  normalised A and B values>`, and K holds a small marker naming A and B. A lookup that finds
  the marker computes the request's variant key and reads again, so clients with different
  Accept-Language values each get their own stored response.
- Every record made for K (marker, variants, plain entry) carries the tag `<ns>:key:<hash K>`,
  so one `invalidate_tags` removes K with all its variants, atomically, on every backend.
- With the default key, K *is* the hash of the canonical URL, so §4.4 invalidation of a URL
  is that one tag. With a `key_func`, K may have nothing to do with the URL: an unsafe request
  drops the key a GET of each target URL would have (`key_func` on that GET), and the keys a
  URL -> keys index record (`cachekit-urlidx:<url hash>`, each key with its expiry) lists as
  stored from that URL (keys that also depend on request headers, e.g. a tenant), and the
  records that carry the URL's tag `<ns>:url:<url hash>`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from starlette.types import ASGIApp

from ...errors import InvalidKeyError, SerializationError
from ...events import key_hash
from ...keys import MAX_KEY_LENGTH
from ...service import CacheService, FillToken
from ...ttl import bounded_ttl
from ..http import (
    Headers,
    StoredResponse,
    TargetURL,
    VaryValues,
    decode_entry,
    encode_entry,
    vary_values,
)
from .asgi import RequestState
from .config import MiddlewareConfig

if TYPE_CHECKING:
    from .telling import RouteTemplates

__all__ = [
    "DEFAULT_MAX_VARIANTS",
    "VARY_MARKER",
    "Runtime",
    "Storage",
    "decode_marker",
    "encode_marker",
    "kept_variants",
    "marker_variants",
    "variant_digest",
    "variant_key",
]

logger = logging.getLogger("fastapi_cachekit.http")

VARY_MARKER = b"\xffCKV"
"""Leading bytes of a Vary marker; distinct from a stored response's magic `\\xffCK\\x01`."""
# A marker that outlives its variants costs one extra read before a miss; one that expires
# first hides live variants until the next store. So markers live at least this long.
_MARKER_MIN_TTL = 3600.0
_INDEX_PREFIX = "cachekit-urlidx:"
_DIGEST_CHARS = 32
DEFAULT_MAX_VARIANTS = 32
"""Variants kept per primary key: enough for real negotiation (languages, encodings), a
bound for a client that sends a new Accept-Language with every request."""


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def encode_marker(names: Sequence[bytes], variants: Sequence[str] = ()) -> bytes:
    """The record stored under a primary key whose response varies on `names`, listing its
    stored `variants` (their digests, least recently stored first)."""
    tail = b"\0\0" + "".join(variants).encode("ascii") if variants else b""
    return VARY_MARKER + b"\0".join(names) + tail


def decode_marker(raw: bytes) -> tuple[bytes, ...] | None:
    """The Vary field names of a marker, or None when `raw` is not one."""
    if not raw.startswith(VARY_MARKER) or len(raw) == len(VARY_MARKER):
        return None
    names = raw[len(VARY_MARKER) :].partition(b"\0\0")[0]
    return tuple(names.split(b"\0"))


def marker_variants(raw: bytes | None) -> list[str]:
    """The variant digests a marker lists (none for anything else). Field names are never
    empty, so the first empty name ends the names."""
    if raw is None or decode_marker(raw) is None:
        return []
    listed = raw.partition(b"\0\0")[2].decode("ascii", "replace")
    size = _DIGEST_CHARS
    return [listed[i : i + size] for i in range(0, len(listed) - size + 1, size)]


def variant_digest(vary: VaryValues) -> str:
    """The digest naming the variant selected by these normalised request values."""
    blob = b"\0".join(
        name + b"\0" + (b"-" if value is None else b"+" + value) for name, value in vary
    )
    return _digest(blob)


def variant_key(key: str, vary: VaryValues | str) -> str:
    """The key of the variant of `key` selected by these values (or by their digest)."""
    digest = vary if isinstance(vary, str) else variant_digest(vary)
    candidate = f"{key}|v:{digest}"
    if len(candidate) <= MAX_KEY_LENGTH:
        return candidate
    # A key near the length limit: hash it too, so the variant key stays within the limit.
    return "v:" + _digest(key.encode("utf-8", "surrogatepass") + b"\0" + digest.encode())


def kept_variants(listed: Sequence[str], stored: str, limit: int) -> tuple[list[str], list[str]]:
    """(variants to keep, variants to drop) once `stored` is stored again or anew: it moves
    to the end, and the least recently stored past `limit` are dropped."""
    order = [digest for digest in listed if digest != stored] + [stored]
    cut = max(0, len(order) - limit)
    return order[cut:], order[:cut]


class Storage:
    """Reads and writes the middleware's records in `namespace` (see the module docstring)."""

    __slots__ = ("indexed", "max_variants", "namespace")

    def __init__(
        self, namespace: str, *, indexed: bool, max_variants: int = DEFAULT_MAX_VARIANTS
    ) -> None:
        self.namespace = namespace
        self.indexed = indexed
        """True with a `key_func`: keys are then recorded in the URL -> keys index."""
        self.max_variants = max_variants
        """Variants kept per primary key; storing one more drops the least recently stored."""

    def key_tag(self, key: str) -> str:
        """The tag on every record of primary key `key`."""
        return f"{self.namespace}:key:{_digest(key.encode('utf-8', 'surrogatepass'))}"

    def _url_tag(self, url_hash: str) -> str:
        return f"{self.namespace}:url:{url_hash}"

    async def read(
        self, cache: CacheService, key: str, headers: Headers
    ) -> tuple[StoredResponse | None, str]:
        """(the stored response for a request with these headers, its key), or (None, the key
        a response for it would be stored under)."""
        raw = await cache.get_raw(key, self.namespace)
        if raw is None:
            return None, key
        entry = decode_entry(raw)
        if entry is not None:
            return entry, key
        return await self.variant(cache, key, raw, headers)

    async def variant(
        self, cache: CacheService, key: str, raw: bytes, headers: Headers
    ) -> tuple[StoredResponse | None, str]:
        """(the stored variant, its key) when `raw`, read under `key`, is a Vary marker;
        (None, key) when it is neither a marker nor a stored response (a miss)."""
        names = decode_marker(raw)
        if names is None:
            return None, key
        storage_key = variant_key(key, vary_values(names, headers))
        data = await cache.get_raw(storage_key, self.namespace)
        return (decode_entry(data) if data is not None else None), storage_key

    async def variants(self, cache: CacheService, key: str) -> list[StoredResponse]:
        """The stored variants of primary key `key` (none when its response does not vary)."""
        listed = marker_variants(await cache.get_raw(key, self.namespace, count=False))
        found: list[StoredResponse] = []
        for digest in listed:
            raw = await cache.get_raw(variant_key(key, digest), self.namespace, count=False)
            entry = decode_entry(raw) if raw is not None else None
            if entry is not None:
                found.append(entry)
        return found

    async def put(
        self,
        cache: CacheService,
        key: str,
        entry: StoredResponse,
        ttl: float | None,
        *,
        tags: Iterable[str] = (),
        url_hash: str | None = None,
        fill: FillToken | None = None,
    ) -> None:
        """Store `entry` for primary key `key` for `ttl` seconds (a variant when it varies;
        None: until removed).

        `fill`: the token taken before the app was called, so that a response computed
        before an invalidation of its key or tags is not stored after it.

        Never raises for a value that cannot be stored: that is logged and skipped, as a
        backend fault is by the service.
        """
        try:
            data = encode_entry(entry)
            all_tags = [self.key_tag(key), *tags]
            if self.indexed and url_hash is not None:
                # The URL's tag on the record itself, written with it: the index below is a
                # read-modify-write that a concurrent store can undo, this tag is not.
                all_tags.append(self._url_tag(url_hash))
            ttl = None if ttl is None else bounded_ttl(ttl)
            if entry.vary:
                await self._put_variant(cache, key, entry, data, ttl, all_tags, fill)
            else:
                await cache.set_raw(key, data, ttl, self.namespace, all_tags, fill=fill)
            if self.indexed and url_hash is not None and ttl is not None:
                await self._index(cache, url_hash, key, ttl, entry.response_time)
        except (SerializationError, InvalidKeyError) as exc:
            logger.error(
                "CacheMiddleware could not store a response (key hash %s): %s",
                key_hash(key),
                exc,
                extra={"cache_key_hash": key_hash(key), "cache_outcome": "not_stored"},
            )

    async def _put_variant(
        self,
        cache: CacheService,
        key: str,
        entry: StoredResponse,
        data: bytes,
        ttl: float | None,
        tags: list[str],
        fill: FillToken | None,
    ) -> None:
        """Store a variant and list it in the marker, dropping the least recently stored
        variants past `max_variants`. Two variants stored at once may each miss the other's
        listing; such a variant is then only bounded by its TTL."""
        digest = variant_digest(entry.vary)
        await cache.set_raw(variant_key(key, digest), data, ttl, self.namespace, tags, fill=fill)
        listed = marker_variants(await cache.get_raw(key, self.namespace, count=False))
        kept, dropped = kept_variants(listed, digest, self.max_variants)
        for old in dropped:
            await cache.delete(variant_key(key, old), self.namespace)
        marker = encode_marker([name for name, _ in entry.vary], kept)
        marker_ttl = None if ttl is None else max(ttl, _MARKER_MIN_TTL)
        await cache.set_raw(key, marker, marker_ttl, self.namespace, tags, fill=fill)

    async def remove(self, cache: CacheService, storage_key: str) -> None:
        """Delete the record a stored response was read from."""
        await cache.delete(storage_key, self.namespace)

    async def invalidate(
        self,
        cache: CacheService,
        targets: Sequence[TargetURL],
        keys: Iterable[str] = (),
    ) -> int:
        """Remove every stored response of these URLs (RFC 9111 §4.4), and those of `keys`
        (with a `key_func`: the keys GET requests for the targets would have); the number of
        records removed."""
        tags = [self.key_tag(key) for key in keys]
        for target in targets:
            url_hash = target.key
            if self.indexed:
                raw = await cache.get_raw(_INDEX_PREFIX + url_hash, self.namespace, count=False)
                tags.extend(self.key_tag(key) for key in _index_members(raw, now=None))
                tags.append(self._url_tag(url_hash))
            else:
                tags.append(self.key_tag(url_hash))  # the default key is the URL hash
        return await cache.invalidate_tags(tags) if tags else 0

    async def _index(
        self, cache: CacheService, url_hash: str, key: str, ttl: float, now: float
    ) -> None:
        """Record that `key` holds a response of URL `url_hash` until `now + ttl`.

        A read-modify-write: two first stores of different keys for one URL at the same
        instant can lose one entry of the index. The URL's tag on each record covers that
        loss; the index is for a key stored again later from another URL, which replaces
        the record's tags.
        """
        index_key = _INDEX_PREFIX + url_hash
        stored = await cache.get_raw(index_key, self.namespace, count=False)
        members = _index_members(stored, now=now)
        members[key] = max(members.get(key, 0.0), now + ttl)
        data = b"\n".join(
            f"{expiry!r} {member}".encode("utf-8", "surrogatepass")
            for member, expiry in members.items()
        )
        index_ttl = max(members.values()) - now
        await cache.set_raw(
            index_key, data, bounded_ttl(index_ttl), self.namespace, [self._url_tag(url_hash)]
        )


def _index_members(raw: bytes | None, *, now: float | None) -> dict[str, float]:
    """key -> expiry of a URL index record (entries expired at `now` dropped; None keeps all)."""
    members: dict[str, float] = {}
    try:
        text = raw.decode("utf-8", "surrogatepass") if raw else ""
    except UnicodeDecodeError:  # a garbled record indexes nothing; it must not fail a write
        return members
    for line in text.split("\n"):
        expiry_text, _, key = line.partition(" ")
        try:
            expiry = float(expiry_text)
        except ValueError:
            continue
        if key and (now is None or expiry > now):
            members[key] = expiry
    return members


class Runtime(NamedTuple):
    """What every fetch of one middleware shares, once its CacheService is known."""

    app: ASGIApp
    config: MiddlewareConfig
    storage: Storage
    cache: CacheService
    templates: RouteTemplates
    """The route templates events are named by (`telling`)."""

    async def put(
        self,
        state: RequestState,
        entry: StoredResponse,
        ttl: float,
        fill: FillToken | None = None,
    ) -> None:
        """Store the response to `state`'s request, with the user's tags."""
        tags: list[str] = []
        tags_func = self.config.tags_func
        if tags_func is not None:
            try:
                tags = list(tags_func(state.request()))
            except Exception:
                logger.exception("CacheMiddleware tags_func failed; the response is not stored")
                return
        url_hash = state.url_hash() if self.storage.indexed else None
        await self.storage.put(
            self.cache, state.key, entry, ttl, tags=tags, url_hash=url_hash, fill=fill
        )
