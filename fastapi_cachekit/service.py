"""CacheService: the spec's cache API over any backend, with stats and single-flight fills.

The service validates input, encodes values, and fails open: a backend fault is logged (once
per burst), counted, and answered as a miss or a skipped write, so the cache never takes the
application down. Bad input, by contrast, raises at once and leaves the cache unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, TypeVar

from pydantic import SecretStr

from .backends.base import DEFERRED, CacheBackend, Deferred, nowait_twin
from .backends.base import FillToken as FillToken
from .errors import BackendError, ConfigurationError, SerializationError
from .flights import Flights
from .keys import (
    check_key,
    check_namespace,
    check_tags,
    is_plain,
    storage_key,
)
from .models import CacheStats, utc_from_timestamp
from .patterns import GlobPattern
from .serialization import Codec, JsonCodec
from .settings import check_admin_token
from .ttl import DEFAULT_TTL, TTL, DefaultTTL, ttl_seconds

__all__ = ["CacheService"]

logger = logging.getLogger("fastapi_cachekit")

T = TypeVar("T")
_MISSING: Final = object()
_FAULT_LOG_INTERVAL = 10.0
# A value too big for the memory left is not the caller's error: the process may well have
# room to serve the request without caching it, so it is a fault, answered as a skipped write.
_OUT_OF_MEMORY = "out of memory while encoding or storing a value; it was not cached"


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
        # A backend that can answer without awaiting (the memory backend; NowaitReads and
        # NowaitWrites) is called that way: an awaited call's coroutine costs more than a
        # memory hit itself.
        self._get_nowait: Callable[[str], bytes | Deferred | None] = (
            nowait_twin(backend, "get") or _deferred
        )
        self._set_nowait: Callable[..., bool | Deferred] = nowait_twin(backend, "set") or _deferred
        self._live_io = (self._get_nowait, self._set_nowait)
        self._enabled = True
        self._bypasses = 0
        if not enabled:
            self._switch(enabled=False)
        self._codec: Codec = codec or JsonCodec()
        self._default_ttl = ttl_seconds(default_ttl)
        self._default_namespace = (
            None if default_namespace is None else check_namespace(default_namespace)
        )
        self._enable_stats = enable_stats
        self._cleanup_interval = cleanup_interval
        self._flush_interval = stats_flush_interval
        self._fill_lock_timeout = fill_lock_timeout
        self._hits = 0
        self._misses = 0
        self._errors = 0
        self._last_fault_log = -_FAULT_LOG_INTERVAL
        self._flights = Flights()
        self._maintenance: asyncio.Task[None] | None = None
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

    @property
    def enabled(self) -> bool:
        """False while the cache is turned off (`enabled=False`, `CACHEKIT_ENABLED=false`,
        or inside `disabled()`)."""
        return self._enabled

    @contextlib.contextmanager
    def disabled(self) -> Iterator[None]:
        """Turn the cache off for the block, for every caller of this service.

        Reads miss, writes store nothing, `get_or_set_async` (and so `@cached`) runs its
        factory on every call and returns its value; each skipped read or write is counted
        in `CacheStats.bypasses`. Invalidations still reach the backend, so entries stored
        before do not outlive the data they were computed from.
        """
        was_enabled = self._enabled
        self._switch(enabled=False)
        try:
            yield
        finally:
            self._switch(enabled=was_enabled)

    def _switch(self, *, enabled: bool) -> None:
        # Turning off swaps the read and write entry points for stand-ins, so that the hot
        # paths carry no "is it on?" test.
        self._enabled = enabled
        self._get_nowait, self._set_nowait = (
            self._live_io if enabled else (self._bypass_read, self._bypass_write)
        )

    def _bypass_read(self, fk: str) -> None:
        self._bypasses += 1

    def _bypass_write(self, *args: Any, **kwargs: Any) -> bool:
        self._bypasses += 1
        return False

    # --- reads ---------------------------------------------------------------------------

    async def get(self, key: str, namespace: str | None = None, *, default: Any = None) -> Any:
        """The cached value, or `default` (None) on a miss."""
        # The hot path: _full_key and _read written out, so that a call is one
        # coroutine (principle 6). Keep it in step with them.
        if namespace is None and self._default_namespace is None and is_plain(key):
            fk = key
        else:
            fk = self._full_key(key, namespace)
        if self._maintenance is None:
            self._start()
        try:
            data = self._get_nowait(fk)
            if data is DEFERRED:
                data = await self._backend.get(fk)
        except BackendError as exc:
            self._fault(exc)
            data = None
        if data is not None:
            try:
                value = self._codec.decode(data)
            except SerializationError as exc:
                self._fault(exc)
            else:
                if self._enable_stats:
                    self._hits += 1
                return value
        if self._enable_stats:
            self._misses += 1
        return default

    async def get_raw(
        self, key: str, namespace: str | None = None, *, count: bool = True
    ) -> bytes | None:
        """The stored bytes, bypassing the codec (for callers with their own format).

        `count=False` leaves the hit/miss statistics alone (for bookkeeping reads).
        """
        data = await self._read(self._full_key(key, namespace))
        if count:
            self._count(hit=data is not None)
        return data

    async def exists(self, key: str, namespace: str | None = None) -> bool:
        """Whether a live entry is stored for `key` (counts neither a hit nor a miss)."""
        fk = self._full_key(key, namespace)
        if not self._enabled:
            return False
        try:
            return await self._backend.exists(fk)
        except BackendError as exc:
            self._fault(exc)
            return False

    async def get_or_set_async(
        self,
        key: str,
        value_factory: Callable[[], Any],
        ttl: TTL | DefaultTTL = DEFAULT_TTL,
        namespace: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> Any:
        """The cached value, or the factory's result, stored and returned.

        `value_factory` may be sync, async, or return an awaitable. Concurrent callers for one
        key share one run of the factory. If the key, its namespace or a tag is invalidated
        while the factory runs, the result is returned but not stored.
        """
        if not callable(value_factory):
            raise TypeError(
                f"value_factory must be callable, got {type(value_factory).__name__}; "
                "wrap a value in a lambda: value_factory=lambda: value"
            )
        fk = self._full_key(key, namespace)
        seconds = self._ttl(ttl)
        tag_tuple = check_tags(tags)
        if not self._enabled:  # no shared flight either: every caller runs its factory
            self._bypasses += 1
            self._count(hit=False)
            result = value_factory()
            return await result if inspect.isawaitable(result) else result
        value = await self.get(key, namespace, default=_MISSING)
        if value is not _MISSING:
            return value
        label = self._namespace(namespace)
        flight = self._flights.join(
            fk,
            lambda: self._fill(fk, value_factory, seconds, label, tag_tuple),
            key,
            label,
            tag_tuple,
        )
        return await asyncio.shield(flight)

    async def _fill(
        self,
        fk: str,
        factory: Callable[[], Any],
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
    ) -> Any:
        owner = await self._claim(fk)
        if owner is None:  # another process is computing it: wait for its result
            value, owner = await self._await_other_process(fk)
            if value is not _MISSING:
                return value
        try:
            token = await self._fill_token()
            result = factory()
            value = await result if inspect.isawaitable(result) else result
            try:
                data = self._codec.encode(value)
            except MemoryError:
                self._fault(MemoryError(_OUT_OF_MEMORY))
                return value
            if token is not None:
                await self._write(fk, data, ttl, namespace, tags, token)
            return value
        finally:
            if owner:
                await self._release(fk, owner)

    async def _claim(self, fk: str) -> str | None:
        """An owner token for computing `fk` ("" without a lock), or None if another has it."""
        if self._fill_lock_timeout is None:
            return ""
        try:
            return await self._backend.acquire_fill_lock(fk, self._fill_lock_timeout)
        except BackendError as exc:
            self._fault(exc)
            return ""

    async def _release(self, fk: str, owner: str) -> None:
        try:
            await self._backend.release_fill_lock(fk, owner)
        except BackendError as exc:  # the claim expires by itself
            self._fault(exc)

    async def _await_other_process(self, fk: str) -> tuple[Any, str]:
        """Poll for the value another process is computing: (the value, ""), or (_MISSING,
        an owner token) once its claim is gone without a value (it failed, or its result
        was not stored) and this process holds it, or (_MISSING, "") at the timeout."""
        deadline = time.monotonic() + (self._fill_lock_timeout or 0.0)
        pause = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
            data = await self._read(fk)
            if data is not None:
                try:
                    return self._codec.decode(data), ""
                except SerializationError as exc:
                    self._fault(exc)
                    break
            owner = await self._claim(fk)
            if owner is not None:
                return _MISSING, owner
        return _MISSING, ""

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
        # The hot path: _full_key, _namespace, _ttl, check_tags and _write written out, so
        # that a call is one coroutine (principle 6); the checks run in the same order.
        if namespace is None and self._default_namespace is None and is_plain(key):
            fk, label = key, None
        else:
            fk, label = self._full_key(key, namespace), self._namespace(namespace)
        seconds = self._default_ttl if isinstance(ttl, DefaultTTL) else ttl_seconds(ttl)
        tag_tuple = () if tags is None else check_tags(tags)
        if self._maintenance is None:
            self._start()
        try:
            data = self._codec.encode(value)
            stored = self._set_nowait(fk, data, ttl=seconds, namespace=label, tags=tag_tuple)
            if stored is DEFERRED:
                stored = await self._backend.set(
                    fk, data, ttl=seconds, namespace=label, tags=tag_tuple
                )
            return stored
        except BackendError as exc:
            self._fault(exc)
            return False
        except MemoryError:
            self._fault(MemoryError(_OUT_OF_MEMORY))
            return False

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
        fk = self._full_key(key, namespace)
        seconds = self._ttl(ttl)
        tag_tuple = check_tags(tags)
        return await self._write(fk, data, seconds, self._namespace(namespace), tag_tuple, fill)

    async def fill_token(self) -> FillToken | None:
        """A token to pass to `set_raw(..., fill=...)`; None when the backend is unavailable
        (then storing is pointless anyway), and while the cache is turned off."""
        return await self._fill_token() if self._enabled else None

    async def delete(self, key: str, namespace: str | None = None) -> bool:
        """Remove one entry; True if a live entry was removed."""
        fk = self._full_key(key, namespace)
        removed = self._invalidate(self._backend.delete(fk), lambda: self._flights.detach_key(fk))
        return bool(await removed)

    # --- invalidation --------------------------------------------------------------------

    async def invalidate_namespace(self, namespace: str) -> int:
        """Remove the entries written with exactly this namespace; the number removed."""
        namespace = check_namespace(namespace)
        return await self._invalidate(
            self._backend.invalidate_namespace(namespace),
            lambda: self._flights.detach_namespace(namespace),
        )

    async def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove the entries carrying any of `tags`; the number removed."""
        tag_tuple = check_tags(tags)
        if not tag_tuple:
            return 0
        return await self._invalidate(
            self._backend.invalidate_tags(tag_tuple), lambda: self._flights.detach_tags(tag_tuple)
        )

    async def invalidate_pattern(self, pattern: str, namespace: str | None = None) -> int:
        """Remove entries whose key matches a glob (`*`, `?`, `[a-z]`, `[^a]`, `\\` escapes).

        Without a namespace (and no default namespace) the pattern is matched against full
        keys; with one, only that namespace's entries are considered, by their key.
        """
        compiled = GlobPattern.compile(pattern)
        target = self._namespace(namespace)
        return await self._invalidate(
            self._backend.invalidate_pattern(compiled, target),
            lambda: self._flights.detach_pattern(compiled, target),
        )

    async def clear_all(self) -> int:
        """Remove every entry of this cache (only this kit's keys); the number removed."""
        return await self._invalidate(self._backend.clear(), self._flights.detach_all)

    async def cleanup_expired(self) -> int:
        """Remove expired entries now; the number removed."""
        return await self._invalidate(self._backend.cleanup_expired(), _nothing)

    # --- statistics and lifecycle --------------------------------------------------------

    async def get_stats(self) -> CacheStats:
        """Hits, misses, hit rate, entry count, memory estimate and oldest/newest entry."""
        self._start()
        await self._flush_counters()
        try:
            stats = await self._backend.stats()
        except BackendError as exc:
            self._fault(exc)
            return CacheStats(
                total_entries=0,
                total_hits=self._hits,
                total_misses=self._misses,
                hit_rate=_rate(self._hits, self._misses),
                errors=self._errors,
                bypasses=self._bypasses,
                # Reported by backends that queue invalidations while they are unreachable.
                pending_invalidations=getattr(self._backend, "pending_invalidations", 0),
            )
        hits, misses = stats.hits + self._hits, stats.misses + self._misses
        return CacheStats(
            total_entries=stats.entries,
            total_hits=hits,
            total_misses=misses,
            hit_rate=_rate(hits, misses),
            memory_usage_bytes=stats.memory_bytes,
            oldest_entry=None if stats.oldest is None else utc_from_timestamp(stats.oldest),
            newest_entry=None if stats.newest is None else utc_from_timestamp(stats.newest),
            errors=self._errors + stats.errors,
            pending_invalidations=stats.pending_invalidations,
            bypasses=self._bypasses,
        )

    async def flush(self) -> None:
        """Send this process's unflushed hit/miss counts to the backend now."""
        await self._flush_counters()

    async def close(self) -> None:
        """Stop background work, flush counters and release the backend's resources."""
        if self._closed:
            return
        self._closed = True
        task = self._maintenance
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush_counters()
        await self._backend.close()

    async def __aenter__(self) -> CacheService:
        self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- internals -----------------------------------------------------------------------

    def _namespace(self, namespace: str | None) -> str | None:
        if namespace is None:
            return self._default_namespace
        return check_namespace(namespace)

    def _full_key(self, key: str, namespace: str | None) -> str:
        """The checked key as the backend stores it (`keys.storage_key`)."""
        namespace = self._default_namespace if namespace is None else check_namespace(namespace)
        return storage_key(check_key(key), namespace)

    def _ttl(self, ttl: TTL | DefaultTTL) -> float | None:
        return self._default_ttl if isinstance(ttl, DefaultTTL) else ttl_seconds(ttl)

    def _count(self, *, hit: bool) -> None:
        if self._enable_stats:
            if hit:
                self._hits += 1
            else:
                self._misses += 1

    async def _read(self, fk: str) -> bytes | None:
        if self._maintenance is None:
            self._start()
        try:
            data = self._get_nowait(fk)
            return await self._backend.get(fk) if data is DEFERRED else data
        except BackendError as exc:
            self._fault(exc)
            return None

    async def _write(
        self,
        fk: str,
        data: bytes,
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
        fill: FillToken | None,
    ) -> bool:
        if self._maintenance is None:
            self._start()
        try:
            stored = self._set_nowait(fk, data, ttl=ttl, namespace=namespace, tags=tags, fill=fill)
            if stored is DEFERRED:
                stored = await self._backend.set(
                    fk, data, ttl=ttl, namespace=namespace, tags=tags, fill=fill
                )
            return stored
        except BackendError as exc:
            self._fault(exc)
            return False
        except MemoryError:
            self._fault(MemoryError(_OUT_OF_MEMORY))
            return False

    async def _fill_token(self) -> FillToken | None:
        try:
            return await self._backend.fill_token()
        except BackendError as exc:
            self._fault(exc)
            return None

    async def _invalidate(self, operation: Awaitable[T], detach: Callable[[], None]) -> T | int:
        """Run an invalidation (a fault: 0 removed), then detach the flights it covers. Only
        then: a flight that began while it ran may have read the old value too."""
        try:
            return await operation
        except BackendError as exc:
            self._fault(exc)
            return 0
        finally:
            detach()

    def _fault(self, exc: Exception) -> None:
        """Count a fault; log it unless one was logged moments ago (a burst).

        Every fault the service sees is counted here; a backend's stats add only what the
        service cannot see (values it could not decode itself, failed background work).
        """
        self._errors += 1
        now = time.monotonic()
        if now - self._last_fault_log >= _FAULT_LOG_INTERVAL:
            self._last_fault_log = now
            logger.warning("cache fault, serving without the cache: %s", exc)

    async def _flush_counters(self) -> None:
        hits, misses = self._hits, self._misses
        if not hits and not misses:
            return
        self._hits = self._misses = 0
        try:
            await self._backend.add_counters(hits, misses)
        except BackendError as exc:
            self._hits += hits
            self._misses += misses
            self._fault(exc)

    def _start(self) -> None:
        """Start the maintenance task (counter flushes, expiry sweeps) on first use, and again
        on the next loop once its loop has ended (`asyncio.run` cancels it then)."""
        if self._maintenance is None and not self._closed:
            self._maintenance = asyncio.get_running_loop().create_task(self._maintain())
            self._maintenance.add_done_callback(self._maintenance_ended)

    def _maintenance_ended(self, task: asyncio.Task[None]) -> None:
        if self._maintenance is task and not self._closed:
            self._maintenance = None

    async def _maintain(self) -> None:
        last_cleanup = time.monotonic()
        while True:
            await asyncio.sleep(self._flush_interval)
            await self._flush_counters()
            now = time.monotonic()
            if self._cleanup_interval and now - last_cleanup >= self._cleanup_interval:
                last_cleanup = now
                await self.cleanup_expired()


def _admin_token(token: str | SecretStr | None) -> SecretStr | None:
    if token is None:
        return None
    secret = token if isinstance(token, SecretStr) else SecretStr(token)
    try:
        check_admin_token(secret.get_secret_value())
    except ValueError as exc:
        raise ConfigurationError(f"admin_token (CACHEKIT_ADMIN_TOKEN): {exc}") from None
    return secret


def _nothing() -> None:
    """The flights an expiry sweep detaches: none (it removes no live entry)."""


def _deferred(*args: Any, **kwargs: Any) -> Deferred:
    """The `*_nowait` stand-in for a backend without a synchronous fast path."""
    return DEFERRED


def _rate(hits: int, misses: int) -> float:
    total = hits + misses
    return hits / total if total else 0.0
