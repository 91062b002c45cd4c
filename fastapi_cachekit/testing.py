"""Testing apps that use the cache: a pytest plugin and the pieces it is made of.

Installed with the package and loaded by pytest through the `pytest11` entry point, it gives
each test a fresh memory cache whose time only moves when told to:

- `cachekit_clock`: a `ManualClock`; `cachekit_clock.advance(61)` expires a 60 s entry;
- `cachekit_recorder`: a `CacheRecorder` of the test cache's reads and writes, per key;
- `cachekit_cache`: the fresh `CacheService` (memory backend, the clock and the recorder);
- `cachekit_setup`: `cachekit_setup(app)` puts that cache in front of a FastAPI app
  (`setup_cache`), undone after the test.

Outside pytest the same pieces are `ManualClock`, `CacheRecorder` and `make_test_cache`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

import pytest

from .backends.base import FillToken
from .backends.memory import MemoryBackend
from .fastapi.dependencies import setup_cache
from .keys import display_key
from .service import CacheService

__all__ = [
    "CacheEvent",
    "CacheRecorder",
    "ManualClock",
    "cachekit_cache",
    "cachekit_clock",
    "cachekit_recorder",
    "cachekit_setup",
    "make_test_cache",
]


class ManualClock:
    """Seconds since the epoch that move only when `advance` is called."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward, so entries whose TTL has run out are gone."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; got advance({seconds})")
        self.now += seconds


@dataclass(frozen=True)
class CacheEvent:
    """One read or write of the cache: `key` is the full key (`namespace:key`)."""

    kind: Literal["hit", "miss", "store"]
    key: str


class CacheRecorder:
    """What the cache was asked, per key: reads (hits and misses) and stores, in order.

    Keys are full keys, `namespace:key` (a `@cached` call's key is `CachedFunction.cache_key`);
    every method takes a glob `pattern` (`*`, `?`, `[...]`) and looks only at matching keys.
    """

    def __init__(self) -> None:
        self.events: list[CacheEvent] = []

    def hits(self, pattern: str = "*") -> list[str]:
        """The keys read with a hit, once per hit."""
        return self._keys("hit", pattern)

    def misses(self, pattern: str = "*") -> list[str]:
        """The keys read with a miss, once per miss."""
        return self._keys("miss", pattern)

    def stores(self, pattern: str = "*") -> list[str]:
        """The keys written, once per write."""
        return self._keys("store", pattern)

    def assert_hit(self, pattern: str = "*") -> None:
        """Fail unless the last read of a key matching `pattern` was a hit."""
        self._assert_last_read("hit", pattern)

    def assert_miss(self, pattern: str = "*") -> None:
        """Fail unless the last read of a key matching `pattern` was a miss."""
        self._assert_last_read("miss", pattern)

    def reset(self) -> None:
        """Forget what was recorded (the cache keeps its entries)."""
        self.events.clear()

    def record(self, kind: Literal["hit", "miss", "store"], key: str) -> None:
        self.events.append(CacheEvent(kind, key))

    def _keys(self, kind: str, pattern: str) -> list[str]:
        return [e.key for e in self.events if e.kind == kind and fnmatchcase(e.key, pattern)]

    def _assert_last_read(self, expected: str, pattern: str) -> None:
        reads = [e for e in self.events if e.kind != "store" and fnmatchcase(e.key, pattern)]
        if not reads:
            raise AssertionError(f"no read of a key matching {pattern!r}; {self._summary()}")
        last = reads[-1]
        if last.kind != expected:
            raise AssertionError(
                f"expected a {expected} for {pattern!r}, the last read of {last.key!r} was a "
                f"{last.kind}; {self._summary()}"
            )

    def _summary(self) -> str:
        recent = ", ".join(f"{e.kind} {e.key}" for e in self.events[-10:])
        return f"recorded: {recent}" if recent else "nothing was recorded"


class _RecordingMemoryBackend(MemoryBackend):
    """The memory backend, telling a recorder about each read and each stored write."""

    def __init__(self, recorder: CacheRecorder, max_items: int, clock: Callable[[], float]):
        super().__init__(max_items, clock=clock)
        self._recorder = recorder

    async def get(self, key: str) -> bytes | None:
        return self.get_nowait(key)

    def get_nowait(self, key: str) -> bytes | None:
        value = super().get_nowait(key)
        self._recorder.record("miss" if value is None else "hit", display_key(key))
        return value

    async def get_with_ttl(self, key: str) -> tuple[bytes, float | None] | None:
        return self.get_with_ttl_nowait(key)

    def get_with_ttl_nowait(self, key: str) -> tuple[bytes, float | None] | None:
        found = super().get_with_ttl_nowait(key)  # the read of an early-refreshed call
        self._recorder.record("miss" if found is None else "hit", display_key(key))
        return found

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> bool:
        return self.set_nowait(key, value, ttl=ttl, namespace=namespace, tags=tags, fill=fill)

    def set_nowait(
        self,
        key: str,
        value: bytes,
        *,
        ttl: float | None,
        namespace: str | None,
        tags: Sequence[str],
        fill: FillToken | None = None,
    ) -> bool:
        stored = super().set_nowait(key, value, ttl=ttl, namespace=namespace, tags=tags, fill=fill)
        if stored:
            self._recorder.record("store", display_key(key))
        return stored


def make_test_cache(
    clock: Callable[[], float] | None = None,
    recorder: CacheRecorder | None = None,
    *,
    max_items: int = 1000,
    **options: Any,
) -> CacheService:
    """A memory CacheService for tests: on `clock` (default: a new ManualClock), recording
    into `recorder` if given; `options` are CacheService's (default_ttl, enabled...)."""
    clock = ManualClock() if clock is None else clock
    recorder = CacheRecorder() if recorder is None else recorder
    return CacheService(_RecordingMemoryBackend(recorder, max_items, clock), **options)


@pytest.fixture
def cachekit_clock() -> ManualClock:
    """The test cache's clock: `cachekit_clock.advance(seconds)` expires entries."""
    return ManualClock()


@pytest.fixture
def cachekit_recorder() -> CacheRecorder:
    """The reads and writes of the test cache, per key."""
    return CacheRecorder()


@pytest.fixture
def cachekit_cache(cachekit_clock: ManualClock, cachekit_recorder: CacheRecorder) -> CacheService:
    """A fresh memory cache for this test, on `cachekit_clock`, recorded by `cachekit_recorder`."""
    return make_test_cache(cachekit_clock, cachekit_recorder)


@pytest.fixture
def cachekit_setup(cachekit_cache: CacheService) -> Iterator[Callable[[Any], CacheService]]:
    """`cachekit_setup(app)`: serve `app` with the test cache (`setup_cache`: its cached
    routes, middleware and `Depends(get_cache)`); the app's own cache is put back after."""
    undo: list[Callable[[], None]] = []

    def install(app: Any) -> CacheService:
        previous = getattr(app.state, "cachekit", None)
        setup_cache(app, cachekit_cache)
        undo.append(lambda: _restore(app, previous))
        return cachekit_cache

    yield install
    for restore in reversed(undo):
        restore()


def _restore(app: Any, previous: CacheService | None) -> None:
    if previous is None:
        del app.state.cachekit  # the app makes its own again on first use
    else:
        setup_cache(app, previous)
