"""A fill: the factory run on a miss, its result stored unless an invalidation came between.

Within a process the service's flights (`flights`) make one fill per key. Across processes,
with a fill lock timeout, the fill first claims the key on the backend; a process that finds
it claimed polls for the value the owner stores, and takes over if the owner gives up.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from .accounting import Accounting
from .backend_io import OUT_OF_MEMORY
from .backends.base import CacheBackend, FillToken
from .errors import BackendError, SerializationError
from .events import CacheEvent
from .serialization import Codec

__all__ = ["Fill", "call"]

_MISSING: Final = object()

Read = Callable[[str], Awaitable[bytes | None]]
Write = Callable[
    [str, bytes, float | None, str | None, tuple[str, ...], FillToken | None], Awaitable[bool]
]


class Fill:
    """Runs factories for a service: claims, computes, encodes, stores, releases."""

    def __init__(
        self,
        backend: CacheBackend,
        codec: Codec,
        accounting: Accounting,
        *,
        read: Read,
        write: Write,
        lock_timeout: float | None,
    ) -> None:
        self._backend = backend
        self._codec = codec
        self._accounting = accounting
        self._read = read
        self._write = write
        self._lock_timeout = lock_timeout

    async def run(
        self,
        fk: str,
        factory: Callable[[], Any],
        ttl: float | None,
        namespace: str | None,
        tags: tuple[str, ...],
    ) -> Any:
        """The factory's value (or the one another process stored meanwhile)."""
        owner = await self._claim(fk)
        if owner is None:  # another process is computing it: wait for its result
            value, owner = await self._await_other_process(fk, namespace)
            if value is not _MISSING:
                return value
        try:
            token = await self.token()
            value = await call(factory)
            try:
                data = self._codec.encode(value)
            except MemoryError:
                self._accounting.not_stored(MemoryError(OUT_OF_MEMORY), namespace, fk)
                return value
            if token is not None:
                await self._write(fk, data, ttl, namespace, tags, token)
            elif self._accounting.emit is not None:  # no token: the backend is unavailable
                self._accounting.emit(
                    CacheEvent("not_stored", self._accounting.layer, namespace, "fault", key=fk)
                )
            return value
        finally:
            if owner:
                await self._release(fk, owner)

    async def token(self) -> FillToken | None:
        """A fill token, or None when the backend is unavailable (storing is pointless)."""
        try:
            return await self._backend.fill_token()
        except BackendError as exc:
            self._accounting.fault(exc)
            return None

    async def _claim(self, fk: str) -> str | None:
        """An owner token for computing `fk` ("" without a lock), or None if another has it."""
        if self._lock_timeout is None:
            return ""
        try:
            return await self._backend.acquire_fill_lock(fk, self._lock_timeout)
        except BackendError as exc:
            self._accounting.fault(exc)
            return ""

    async def _release(self, fk: str, owner: str) -> None:
        try:
            await self._backend.release_fill_lock(fk, owner)
        except BackendError as exc:  # the claim expires by itself
            self._accounting.fault(exc)

    async def _await_other_process(self, fk: str, namespace: str | None) -> tuple[Any, str]:
        """Wait for another process's fill (`_poll`), and tell the observers how it ended
        ("served", "took_over", "timed_out") and how long it took."""
        started = time.monotonic()
        value, owner = await self._poll(fk, started + (self._lock_timeout or 0.0))
        emit = self._accounting.emit
        if emit is not None:
            ended = "served" if value is not _MISSING else "took_over" if owner else "timed_out"
            waited = time.monotonic() - started
            emit(
                CacheEvent(
                    "lock_wait", self._accounting.layer, namespace, ended, duration=waited, key=fk
                )
            )
        return value, owner

    async def _poll(self, fk: str, deadline: float) -> tuple[Any, str]:
        """Poll for the value another process is computing: (the value, ""), or (_MISSING,
        an owner token) once its claim is gone without a value (it failed, or its result
        was not stored) and this process holds it, or (_MISSING, "") at the deadline."""
        pause = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)
            data = await self._read(fk)
            if data is not None:
                try:
                    return self._codec.decode(data), ""
                except SerializationError as exc:
                    self._accounting.fault(exc, "service")
                    break
            owner = await self._claim(fk)
            if owner is not None:
                return _MISSING, owner
        return _MISSING, ""


async def call(factory: Callable[[], Any]) -> Any:
    """Run a sync or async factory (or one that returns an awaitable); its value."""
    result = factory()
    return await result if inspect.isawaitable(result) else result
