"""CacheService: the cache API over any backend, with stats and single-flight fills.

The service validates input, encodes values, and fails open: a backend fault is logged (once
per burst), counted, and answered as a miss or a skipped write, so the cache never takes the
application down. Bad input, by contrast, raises at once and leaves the cache unchanged.

This module is the facade, and long for it (~440 lines): some 30 public methods with the
docstrings the API reference is built from, and the reads and writes whole, key checks
included (a layer in between would cost on every hit). The rest is done by its parts:
`backend_io` (each backend call), `misses` (fills, in flights), `refresh`, `batch`,
`invalidations`, `switch` (the off switch), `observing`, `accounting` (counters, the fault
log) and `lifetime` (stats, flushes, closing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any

from pydantic import SecretStr

from .accounting import Accounting
from .backend_io import OUT_OF_MEMORY, BackendIO
from .backends.base import DEFERRED, CacheBackend
from .backends.base import FillToken as FillToken
from .batch import Batches, many
from .errors import ConfigurationError, SerializationError
from .events import CacheEvent, CacheObserver, Layer
from .fills import call
from .flights import Flights, landing
from .invalidations import Invalidations
from .keys import check_key, check_namespace, check_tags, is_plain, storage_key
from .lifetime import Lifetime
from .misses import Misses
from .models import CacheStats
from .observing import Observation, observers_of
from .patterns import GlobPattern
from .refresh import MISSING, EarlyRefresh, RefreshAhead
from .serialization import Codec, JsonCodec
from .settings import check_admin_token
from .switch import OffSwitch
from .ttl import DEFAULT_TTL, TTL, DefaultTTL, ttl_seconds

__all__ = ["CacheService"]


class CacheService:
    """Async cache operations: get/set/delete with TTL, invalidation, stats, get-or-set."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        codec: Codec | None = None,
        default_ttl: TTL = 3600,
        default_namespace: str | None = None,
        enable_stats: bool = True,
        cleanup_interval: float | None = None,
        stats_flush_interval: float = 1.0,
        fill_lock_timeout: float | None = None,
        admin_token: str | SecretStr | None = None,
        enabled: bool = True,
        observers: CacheObserver | Iterable[CacheObserver] | None = None,
    ) -> None:
        self._backend = backend
        self._admin_token = _admin_token(admin_token)
        self._codec = codec = codec or JsonCodec()
        self._default_ttl = ttl_seconds(default_ttl)
        self._default_namespace = (
            None if default_namespace is None else check_namespace(default_namespace)
        )
        # Events name the tier that answered: `layer`, or `nowait_layer` when the backend's
        # synchronous fast path did (a hybrid's L1 in front of its L2).
        layer: Layer = getattr(backend, "layer", "service")
        nowait_layer: Layer = getattr(backend, "nowait_layer", layer)
        self._accounting = accounting = Accounting(layer)
        self._observation = observation = Observation(
            accounting,
            (nowait_layer, layer),
            self._default_namespace,
            counting=enable_stats,
            backend=backend,
        )
        self._rewire()
        for observer in observers_of(observers):
            self.add_observer(observer)
        self._lifetime = Lifetime(
            backend,
            accounting,
            self.cleanup_expired,
            flush_interval=stats_flush_interval,
            cleanup_interval=cleanup_interval,
        )
        self._upkeep = upkeep = self._lifetime.upkeep
        self._io = io = BackendIO(backend, accounting, upkeep)
        self._switch = OffSwitch(io, enabled=enabled)
        self._flights = flights = Flights()
        self._misses = Misses(
            backend, io, codec, accounting, observation, flights, lock_timeout=fill_lock_timeout
        )
        self._batches = batches = Batches(backend, io, accounting, upkeep, codec, observation)
        self._refresh = EarlyRefresh(backend, io, codec, accounting, observation, flights)
        self._invalidations = Invalidations(backend, io, batches, flights, observation)

    @property
    def backend(self) -> CacheBackend:
        """The storage backend behind this service."""
        return self._backend

    @property
    def admin_token(self) -> SecretStr | None:
        """The bearer token `admin_router(cache=this)` requires (the `admin_token` setting)."""
        return self._admin_token

    @property
    def default_ttl(self) -> float | None:
        """Seconds an entry lives when `set` is called without `ttl` (None: forever)."""
        return self._default_ttl

    def check_refresh_ahead(
        self, refresh_ahead: RefreshAhead, ttl: TTL | DefaultTTL = DEFAULT_TTL
    ) -> None:
        """Raise what `get_or_set_async` would raise on every call with `refresh_ahead` and
        `ttl` (the default TTL when not given): a window as long as the TTL, no TTL, or a
        backend that cannot tell how long an entry has left. `@cached` checks it up front."""
        self._refresh.window(refresh_ahead, self._ttl(ttl))

    # --- observers -----------------------------------------------------------------------

    @property
    def observers(self) -> tuple[CacheObserver, ...]:
        """The observers told of this service's events (`fastapi_cachekit.events`)."""
        return self._observation.observers

    def add_observer(self, observer: CacheObserver) -> None:
        """Tell `observer` every event of this service from now on (once, however often it
        is added). An observer that raises is counted as a fault and logged, never raised."""
        self._observation.add(observer)
        self._rewire()

    def remove_observer(self, observer: CacheObserver) -> None:
        """Stop telling `observer` (nothing happens if it was not added)."""
        self._observation.remove(observer)
        self._rewire()

    def _rewire(self) -> None:
        observation = self._observation
        self._hit, self._hit_nowait = observation.hit, observation.hit_nowait
        self._miss = observation.miss
        # A plain attribute, not a property: the HTTP hit path tests it on every request.
        self.emit: Callable[[CacheEvent], None] | None = observation.emit
        """Tell this service's observers an event; None while it has none (so a caller
        builds no event that nobody hears). For the layers around the service: HTTP."""

    # --- the off switch ------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """False while the cache is turned off (`enabled=False`, `CACHEKIT_ENABLED=false`,
        or inside `disabled()`)."""
        return self._io.enabled

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Turn the cache off for the block, for every caller of this service.

        Reads miss, writes store nothing, `get_or_set_async` (and so `@cached`) runs its
        factory on every call and returns its value; each skipped read or write is counted
        in `CacheStats.bypasses`. Invalidations still reach the backend, so entries stored
        before do not outlive the data they were computed from.
        """
        with self._switch.off():
            yield

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str, namespace: str | None = None, *, default: Any = None) -> Any:
        """The cached value, or `default` (None) on a miss."""
        fk = self._key(key, namespace)
        data = self._io.read_nowait(fk)  # the two halves of `read`: no coroutine on a hit
        hit = self._hit_nowait
        if data is DEFERRED:
            data = await self._io.read_awaited(fk)
            hit = self._hit
        if data is not None:
            try:
                value = self._codec.decode(data)
            except SerializationError as exc:
                self._accounting.fault(exc, "service")
            else:
                hit(namespace)
                return value
        self._miss(namespace)
        return default

    async def get_many(self, keys: Iterable[str], namespace: str | None = None) -> dict[str, Any]:
        """The cached values of `keys`, by key: a key that missed is absent from the result
        (so a cached None is told apart from a miss).

        One round trip to the backend (per Redis node) for all of them; hits and misses are
        counted per distinct key, and a fault answers every key as a miss, as `get` does.
        """
        pairs = {key: self._key(key, namespace) for key in many(keys)}
        return await self._batches.get_many(list(pairs.items()), namespace)

    async def get_raw(
        self, key: str, namespace: str | None = None, *, count: bool = True
    ) -> bytes | None:
        """The stored bytes, bypassing the codec (for callers with their own format).

        `count=False` leaves the hit/miss statistics alone (for bookkeeping reads).
        """
        fk = self._key(key, namespace)
        data = self._io.read_nowait(fk)
        if data is DEFERRED:
            data = await self._io.read_awaited(fk)
            if count:
                (self._miss if data is None else self._hit)(namespace)
        elif count:
            (self._miss if data is None else self._hit_nowait)(namespace)
        return data

    async def exists(self, key: str, namespace: str | None = None) -> bool:
        """Whether a live entry is stored for `key` (counts neither a hit nor a miss)."""
        return await self._io.exists(self._key(key, namespace))

    async def get_or_set_async(
        self,
        key: str,
        value_factory: Callable[[], Any],
        ttl: TTL | DefaultTTL = DEFAULT_TTL,
        namespace: str | None = None,
        tags: Iterable[str] | None = None,
        *,
        refresh_ahead: RefreshAhead = None,
    ) -> Any:
        """The cached value, or the factory's result, stored and returned.

        `value_factory` may be sync, async, or return an awaitable. Concurrent callers for one
        key share one run of the factory. If the key, its namespace or a tag is invalidated
        while the factory runs, the result is returned but not stored.

        `refresh_ahead` (seconds or a timedelta, shorter than the TTL): a hit on an entry with
        that long or less left returns the stored value and recomputes it in the background,
        once per key, so that callers do not wait for the factory at expiry (the early
        refresh guide).
        """
        if not callable(value_factory):
            raise TypeError(
                f"value_factory must be callable, got {type(value_factory).__name__}; "
                "wrap a value in a lambda: value_factory=lambda: value"
            )
        fk, label = self._key(key, namespace), self._namespace(namespace)
        seconds = self._ttl(ttl)
        tag_tuple = check_tags(tags)
        ahead = None if refresh_ahead is None else self._refresh.window(refresh_ahead, seconds)
        if not self._io.enabled:  # no shared flight either: every caller runs its factory
            return await self._misses.uncached(value_factory, label, namespace)
        earlier = self._flights.current(fk)  # joined on a miss, even if it lands meanwhile
        if ahead is None:
            value = await self.get(key, namespace, default=MISSING)
        else:
            value = await self._refresh.read(
                fk,
                namespace,
                ahead,
                lambda: self._misses.flight(key, fk, value_factory, seconds, label, tag_tuple),
            )
        if value is not MISSING:
            return value
        flight = self._misses.flight(key, fk, value_factory, seconds, label, tag_tuple, earlier)
        # Cancelling this caller leaves the shared flight running. A flight cancelled under it
        # (`close()` cancels the refreshes in progress, which callers that miss at expiry
        # join) is not passed on: the caller runs its factory itself, uncached.
        await landing(flight)
        return await call(value_factory) if flight.cancelled() else flight.result()

    # --- writes --------------------------------------------------------------------------

    async def set(
        self,
        key: str,
        value: Any,
        ttl: TTL | DefaultTTL = DEFAULT_TTL,
        namespace: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> bool:
        """Store `value`; `ttl` omitted = the default TTL, `ttl=None` = never expires.

        Returns whether the value was stored (False when the backend is unavailable).
        """
        fk, label = self._key(key, namespace), self._namespace(namespace)
        seconds = self._ttl(ttl)
        tag_tuple = check_tags(tags)
        try:
            data = self._codec.encode(value)
        except MemoryError:
            self._accounting.not_stored(MemoryError(OUT_OF_MEMORY), label, fk)
            return False
        # The two halves of `write`, so that a memory write costs no coroutine.
        stored = self._io.write_nowait(fk, data, seconds, label, tag_tuple, None)
        if stored is DEFERRED:
            return await self._io.write_awaited(fk, data, seconds, label, tag_tuple, None)
        return stored

    async def set_many(
        self,
        items: Mapping[str, Any],
        ttl: TTL | DefaultTTL = DEFAULT_TTL,
        namespace: str | None = None,
        tags: Iterable[str] | None = None,
        *,
        fill: FillToken | None = None,
    ) -> int:
        """Store every value of `items` (key -> value) with the same TTL, namespace and tags,
        in one round trip (per Redis node); the number stored.

        Each key is stored as `set` would store it. Every key, the TTL and the tags are
        checked, and every value encoded, before anything is written: bad input raises and
        stores nothing. With `fill` (from `fill_token()`, taken before the values were
        computed) a key is not stored if it, the namespace, a tag or a matching pattern was
        invalidated since. A fault is counted and returns 0 (a fault in mid-batch, a
        timeout say, may leave some of the values stored, as a `set` that timed out may).
        """
        if not isinstance(items, Mapping):
            raise TypeError(
                f"items must be a mapping of key -> value, got {type(items).__name__}; "
                "pass a dict, e.g. set_many({'user:1': alice, 'user:2': bob})"
            )
        label, seconds, tag_tuple = self._namespace(namespace), self._ttl(ttl), check_tags(tags)
        pairs = [(self._key(key, namespace), value) for key, value in items.items()]
        return await self._batches.set_many(pairs, seconds, label, tag_tuple, fill)

    async def set_raw(
        self,
        key: str,
        data: bytes,
        ttl: TTL | DefaultTTL = DEFAULT_TTL,
        namespace: str | None = None,
        tags: Iterable[str] | None = None,
        *,
        fill: FillToken | None = None,
    ) -> bool:
        """Store bytes as they are, bypassing the codec; see `set`.

        With `fill` (from `fill_token()`, taken before the data was computed) nothing is
        stored if the key, its namespace, a tag or a matching pattern was invalidated since.
        """
        fk, label = self._key(key, namespace), self._namespace(namespace)
        seconds = self._ttl(ttl)
        return await self._io.write(fk, data, seconds, label, check_tags(tags), fill)

    async def fill_token(self) -> FillToken | None:
        """A token to pass to `set_raw(..., fill=...)`; None when the backend is unavailable
        (then storing is pointless anyway), and while the cache is turned off."""
        return await self._misses.token()

    async def delete(self, key: str, namespace: str | None = None) -> bool:
        """Remove one entry; True if a live entry was removed."""
        return await self._invalidations.key(self._key(key, namespace), self._namespace(namespace))

    async def delete_many(self, keys: Iterable[str], namespace: str | None = None) -> int:
        """Remove the entries of `keys` (in one round trip per Redis node); the number of
        live entries removed. Bad keys raise before anything is removed."""
        stored_keys = list(dict.fromkeys(self._key(key, namespace) for key in many(keys)))
        if not stored_keys:
            return 0
        return await self._invalidations.keys(stored_keys, self._namespace(namespace))

    # --- invalidation: `invalidations.py` runs each, detaches its flights, and tells it ---

    async def invalidate_namespace(self, namespace: str) -> int:
        """Remove the entries written with exactly this namespace; the number removed."""
        return await self._invalidations.namespace(check_namespace(namespace))

    async def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove the entries carrying any of `tags`; the number removed."""
        return await self._invalidations.tags(check_tags(tags))

    async def invalidate_pattern(self, pattern: str, namespace: str | None = None) -> int:
        """Remove entries whose key matches a glob (`*`, `?`, `[a-z]`, `[^a]`, `\\` escapes).

        Without a namespace (and no default namespace) the pattern is matched against full
        keys; with one, only that namespace's entries are considered, by their key.
        """
        compiled = GlobPattern.compile(pattern)
        return await self._invalidations.pattern(compiled, self._namespace(namespace))

    async def clear_all(self) -> int:
        """Remove every entry of this cache (only this kit's keys); the number removed."""
        return await self._invalidations.clear()

    async def cleanup_expired(self) -> int:
        """Remove expired entries now; the number removed."""
        return await self._invalidations.expired()

    # --- statistics and lifecycle --------------------------------------------------------

    async def get_stats(self) -> CacheStats:
        """Hits, misses, hit rate, entry count, memory estimate and oldest/newest entry."""
        return await self._lifetime.stats()

    async def flush(self) -> None:
        """Send this process's unflushed hit/miss counts to the backend now."""
        await self._lifetime.flush()

    async def close(self) -> None:
        """Stop background work, flush counters and release the backend's resources."""
        await self._lifetime.close(self._refresh.close)

    async def __aenter__(self) -> CacheService:
        self._upkeep.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- internals -----------------------------------------------------------------------

    def _key(self, key: str, namespace: str | None) -> str:
        """The checked key as the backend stores it (`keys.storage_key`)."""
        if namespace is None:
            if self._default_namespace is None and is_plain(key):
                return key  # most keys: storage_key(key, None) is the key
            namespace = self._default_namespace
        else:
            namespace = check_namespace(namespace)
        return storage_key(check_key(key), namespace)

    def _namespace(self, namespace: str | None) -> str | None:
        return self._default_namespace if namespace is None else check_namespace(namespace)

    def _ttl(self, ttl: TTL | DefaultTTL) -> float | None:
        return self._default_ttl if isinstance(ttl, DefaultTTL) else ttl_seconds(ttl)


def _admin_token(token: str | SecretStr | None) -> SecretStr | None:
    if token is None:
        return None
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    try:
        check_admin_token(secret.get_secret_value())
    except ValueError as exc:
        raise ConfigurationError(f"admin_token (CACHEKIT_ADMIN_TOKEN): {exc}") from None
    return secret
