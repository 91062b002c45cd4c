"""CacheService: the cache API over any backend, with stats and single-flight fills.

The service validates input, encodes values, and fails open: a backend fault is logged (once
per burst), counted, and answered as a miss or a skipped write, so the cache never takes the
application down. Bad input, by contrast, raises at once and leaves the cache unchanged.

Its neighbours: `accounting` (counters and the fault log), `fills` (the factory run on a
miss), `flights` (one fill per key in this process), `maintenance` (the background task).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

from pydantic import SecretStr

from .accounting import Accounting
from .backend_io import OUT_OF_MEMORY, BackendIO
from .backends.base import DEFERRED, CacheBackend
from .backends.base import FillToken as FillToken
from .errors import BackendError, ConfigurationError, SerializationError
from .fills import Fill, call
from .flights import Flights
from .keys import check_key, check_namespace, check_tags, is_plain, storage_key
from .maintenance import Maintenance
from .models import CacheStats
from .patterns import GlobPattern
from .refresh import MISSING, EarlyRefresh, RefreshAhead
from .serialization import Codec, JsonCodec
from .settings import check_admin_token
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
    ) -> None:
        self._backend = backend
        self._admin_token = _admin_token(admin_token)
        self._codec: Codec = codec or JsonCodec()
        self._default_ttl = ttl_seconds(default_ttl)
        self._default_namespace = (
            None if default_namespace is None else check_namespace(default_namespace)
        )
        self._accounting = Accounting()
        self._count: Callable[[bool], None] = self._accounting.count if enable_stats else _ignore
        self._upkeep = Maintenance(
            self._flush_counters,
            self.cleanup_expired,
            flush_interval=stats_flush_interval,
            cleanup_interval=cleanup_interval,
        )
        self._io = BackendIO(backend, self._accounting, self._upkeep)
        self._io.switch(enabled=enabled)
        self._off_blocks = 0
        self._enabled_outside_blocks = enabled
        self._fill = Fill(
            backend,
            self._codec,
            self._accounting,
            read=self._io.read,
            write=self._io.write,
            lock_timeout=fill_lock_timeout,
        )
        self._flights = Flights()
        self._refresh = EarlyRefresh(
            backend, self._io, self._codec, self._accounting, self._count, self._flights
        )
        self._closed = False

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
        # Blocks of several tasks may overlap: the last one to end restores the setting.
        if not self._off_blocks:
            self._enabled_outside_blocks = self._io.enabled
        self._off_blocks += 1
        self._io.switch(enabled=False)
        try:
            yield
        finally:
            self._off_blocks -= 1
            if not self._off_blocks:
                self._io.switch(enabled=self._enabled_outside_blocks)

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str, namespace: str | None = None, *, default: Any = None) -> Any:
        """The cached value, or `default` (None) on a miss."""
        fk = self._key(key, namespace)
        data = self._io.read_nowait(fk)  # the two halves of `read`: no coroutine on a hit
        if data is DEFERRED:
            data = await self._io.read_awaited(fk)
        if data is not None:
            try:
                value = self._codec.decode(data)
            except SerializationError as exc:
                self._accounting.fault(exc)
            else:
                self._count(True)
                return value
        self._count(False)
        return default

    async def get_raw(
        self, key: str, namespace: str | None = None, *, count: bool = True
    ) -> bytes | None:
        """The stored bytes, bypassing the codec (for callers with their own format).

        `count=False` leaves the hit/miss statistics alone (for bookkeeping reads).
        """
        data = await self._io.read(self._key(key, namespace))
        if count:
            self._count(data is not None)
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
            self._accounting.bypasses += 1
            self._count(False)
            return await call(value_factory)
        if ahead is None:
            value = await self.get(key, namespace, default=MISSING)
        else:
            value = await self._refresh.read(
                fk, ahead, lambda: self._join(key, fk, value_factory, seconds, label, tag_tuple)
            )
        if value is not MISSING:
            return value
        return await asyncio.shield(self._join(key, fk, value_factory, seconds, label, tag_tuple))

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
            self._accounting.fault(MemoryError(OUT_OF_MEMORY))
            return False
        # The two halves of `write`, so that a memory write costs no coroutine.
        stored = self._io.write_nowait(fk, data, seconds, label, tag_tuple, None)
        if stored is DEFERRED:
            return await self._io.write_awaited(fk, data, seconds, label, tag_tuple, None)
        return stored

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
        return await self._fill.token() if self._io.enabled else None

    async def delete(self, key: str, namespace: str | None = None) -> bool:
        """Remove one entry; True if a live entry was removed."""
        fk = self._key(key, namespace)
        removed = self._io.invalidate(
            self._backend.delete(fk), lambda: self._flights.detach_key(fk)
        )
        return bool(await removed)

    # --- invalidation --------------------------------------------------------------------

    async def invalidate_namespace(self, namespace: str) -> int:
        """Remove the entries written with exactly this namespace; the number removed."""
        namespace = check_namespace(namespace)
        return await self._io.invalidate(
            self._backend.invalidate_namespace(namespace),
            lambda: self._flights.detach_namespace(namespace),
        )

    async def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove the entries carrying any of `tags`; the number removed."""
        tag_tuple = check_tags(tags)
        if not tag_tuple:
            return 0
        return await self._io.invalidate(
            self._backend.invalidate_tags(tag_tuple), lambda: self._flights.detach_tags(tag_tuple)
        )

    async def invalidate_pattern(self, pattern: str, namespace: str | None = None) -> int:
        """Remove entries whose key matches a glob (`*`, `?`, `[a-z]`, `[^a]`, `\\` escapes).

        Without a namespace (and no default namespace) the pattern is matched against full
        keys; with one, only that namespace's entries are considered, by their key.
        """
        compiled = GlobPattern.compile(pattern)
        target = self._namespace(namespace)
        return await self._io.invalidate(
            self._backend.invalidate_pattern(compiled, target),
            lambda: self._flights.detach_pattern(compiled, target),
        )

    async def clear_all(self) -> int:
        """Remove every entry of this cache (only this kit's keys); the number removed."""
        return await self._io.invalidate(self._backend.clear(), self._flights.detach_all)

    async def cleanup_expired(self) -> int:
        """Remove expired entries now; the number removed."""
        return await self._io.invalidate(self._backend.cleanup_expired(), _ignore)

    # --- statistics and lifecycle --------------------------------------------------------

    async def get_stats(self) -> CacheStats:
        """Hits, misses, hit rate, entry count, memory estimate and oldest/newest entry."""
        self._upkeep.start()
        await self._flush_counters()
        try:
            stats = await self._backend.stats()
        except BackendError as exc:
            self._accounting.fault(exc)
            # Reported by backends that queue invalidations while they are unreachable.
            return self._accounting.stats_without(
                getattr(self._backend, "pending_invalidations", 0)
            )
        return self._accounting.stats(stats)

    async def flush(self) -> None:
        """Send this process's unflushed hit/miss counts to the backend now."""
        await self._flush_counters()

    async def close(self) -> None:
        """Stop background work, flush counters and release the backend's resources."""
        if self._closed:
            return
        self._closed = True
        await self._refresh.close()
        await self._upkeep.stop()
        await self._flush_counters()
        await self._backend.close()

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

    def _join(
        self,
        key: str,
        fk: str,
        factory: Callable[[], Any],
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
    ) -> asyncio.Future[Any]:
        """The flight filling `fk`: the one in progress, or a new one running `factory`."""
        fill = lambda: self._fill.run(fk, factory, ttl, namespace, tags)  # noqa: E731
        return self._flights.join(fk, fill, key, namespace, tags)

    def _namespace(self, namespace: str | None) -> str | None:
        return self._default_namespace if namespace is None else check_namespace(namespace)

    def _ttl(self, ttl: TTL | DefaultTTL) -> float | None:
        return self._default_ttl if isinstance(ttl, DefaultTTL) else ttl_seconds(ttl)

    async def _flush_counters(self) -> None:
        await self._accounting.flush(self._backend)


def _admin_token(token: str | SecretStr | None) -> SecretStr | None:
    if token is None:
        return None
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    try:
        check_admin_token(secret.get_secret_value())
    except ValueError as exc:
        raise ConfigurationError(f"admin_token (CACHEKIT_ADMIN_TOKEN): {exc}") from None
    return secret


def _ignore(*args: object) -> None:
    """A stand-in that does nothing: uncounted reads, the flights a sweep detaches (none)."""
