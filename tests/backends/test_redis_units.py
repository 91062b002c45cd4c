"""Redis backend parts that need no server: envelope, key layout, breaker, queue, config."""

from __future__ import annotations

import asyncio
import math

import pytest
from redis.crc import key_slot

from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis.faults import (
    CircuitBreaker,
    Invalidation,
    PendingInvalidations,
    Replay,
)
from fastapi_cachekit.backends.redis.layout import (
    CLUSTER_SHARDS,
    HEADER_SIZE,
    Layout,
    open_envelope,
    pack_envelope,
)
from fastapi_cachekit.backends.redis.match import server_match
from fastapi_cachekit.backends.redis.turns import Turns
from fastapi_cachekit.errors import ConfigurationError
from fastapi_cachekit.keys import GlobPattern
from fastapi_cachekit.settings import CacheSettings
from tests.clock import FakeClock

# --- envelope and layout -------------------------------------------------------------------


def test_envelope_round_trip() -> None:
    data = pack_envelope(b"value", 1000.5, math.inf, "ns", ("a", "b"))
    envelope = open_envelope(data)
    assert envelope is not None
    assert (envelope.created_ms, envelope.expires_ms) == (1000.5, math.inf)
    assert data[envelope.value_offset :] == b"value"
    header = open_envelope(data[:HEADER_SIZE], header_only=True)
    assert header is not None
    assert header.expires_ms == math.inf


@pytest.mark.parametrize("raw", [b"", b"value", b"CK\x01short", b"CK\x02" + bytes(40)])
def test_anything_else_is_not_an_envelope(raw: bytes) -> None:
    assert open_envelope(raw) is None


def test_a_truncated_envelope_is_refused() -> None:
    data = pack_envelope(b"", 1.0, 2.0, None, ("tag",))
    assert open_envelope(data[:-1]) is None


def test_an_envelope_opens_to_its_value_and_expiry() -> None:
    data = pack_envelope(b"value", 1000.0, 2000.0, "ns", ("a",))
    envelope = open_envelope(data)
    assert envelope is not None
    assert (data[envelope.value_offset :], envelope.expires_ms) == (b"value", 2000.0)
    forever = open_envelope(pack_envelope(b"", 1.0, math.inf, None, ()))
    assert forever is not None
    assert forever.expires_ms == math.inf
    nan = pack_envelope(b"v", 1.0, math.nan, None, ())
    for raw in (b"", b"value", data[:-6], b"CK\x01" + bytes(10), nan):
        assert open_envelope(raw) is None


def test_single_node_keys() -> None:
    layout = Layout.single("app")
    shard = layout.shard_of("user:1")
    assert shard.entry("user:1") == "app:e:user:1"
    assert shard.index("t", "x") == "app:t:x"
    assert shard.drain("t", "x") == "app:T:x"
    assert layout.sequence == "app:seq"


def test_cluster_shards_spread_evenly_over_the_slots() -> None:
    layout = Layout.cluster("app")
    assert len(layout.shards) == CLUSTER_SHARDS
    slots = [key_slot(shard.entry("anything").encode()) for shard in layout.shards]
    width = 16384 // CLUSTER_SHARDS
    assert [slot // width for slot in slots] == list(range(CLUSTER_SHARDS))
    # An entry and every index of its shard share one slot, whatever the key contains.
    shard = layout.shard_of("a{b}c")
    assert key_slot(shard.entry("a{b}c").encode()) == key_slot(shard.index("t", "{x}").encode())
    used = {layout.shard_of(f"key{i}") for i in range(1000)}
    assert len(used) == CLUSTER_SHARDS


# --- circuit breaker and queue -------------------------------------------------------------


_REFUSED = "ConnectionError: Connection refused"  # the reason a failure is logged with


def test_breaker_fails_fast_then_probes_with_a_growing_back_off() -> None:
    clock = FakeClock(0)
    breaker = CircuitBreaker(1.0, first_backoff=0.1, monotonic=clock)
    assert breaker.allow()
    breaker.failed(_REFUSED)
    assert (breaker.state, breaker.backoff) == ("open", 0.1)
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.allow()  # the probe...
    assert breaker.state == "half-open"
    assert not breaker.allow()  # ...and only one
    breaker.failed(_REFUSED)
    assert breaker.backoff == 0.2
    for _ in range(10):
        clock.advance(breaker.backoff)
        assert breaker.allow()
        breaker.failed(_REFUSED)
    assert breaker.backoff == 1.0  # capped
    clock.advance(1.0)
    assert breaker.allow()
    breaker.succeeded()
    assert (breaker.state, breaker.backoff) == ("closed", 0.0)
    assert breaker.rejections == 2


def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = FakeClock(0)
    breaker = CircuitBreaker(1.0, monotonic=clock)
    breaker.failed(_REFUSED)
    clock.advance(1)
    assert breaker.allow()
    breaker.abandoned()
    assert breaker.allow()


def test_late_failures_do_not_extend_the_back_off() -> None:
    breaker = CircuitBreaker(1.0, first_backoff=0.1, monotonic=FakeClock(0))
    breaker.failed(_REFUSED)
    breaker.failed(_REFUSED)  # a call that started before the circuit opened
    assert breaker.backoff == 0.1


async def test_queue_replays_in_order_and_overflows_into_a_clear() -> None:
    done: list[str] = []

    def step(name: str) -> Replay:
        async def run() -> None:
            done.append(name)

        return run

    async def replayed(invalidation: Invalidation) -> None:
        done.append(f"then {invalidation}")

    queue = PendingInvalidations(limit=2)
    queue.add(Invalidation("key", ("a",)), step("a"))
    queue.add(Invalidation("tags", ("b", "c")), step("b"))
    assert len(queue) == 2
    assert await queue.replay(step("clear"), replayed) == 2
    # Each one is reported once it has run, before the next one runs.
    assert done == ["a", "then key 'a'", "b", "then tags 'b', 'c'"]
    done.clear()
    for name in "cde":
        queue.add(Invalidation("key", (name,)), step(name))
    assert len(queue) == 1  # dropped, a clear is owed instead
    queue.add(Invalidation("namespace", ("f",)), step("f"))
    assert len(queue) == 1
    await queue.replay(step("clear"), replayed)
    assert done == ["clear", "then clear"]
    assert len(queue) == 0


async def test_a_queued_clear_after_an_owed_clear_is_one_clear() -> None:
    done: list[str] = []

    def step(name: str) -> Replay:
        async def run() -> None:
            done.append(name)

        return run

    queue = PendingInvalidations(limit=1)
    for name in "ab":
        queue.add(Invalidation("key", (name,)), step(name))
    queue.add_clear(step("clear"))
    assert len(queue) == 1
    assert await queue.replay(step("owed clear")) == 1
    assert done == ["clear"]


def test_invalidations_describe_themselves_for_the_log() -> None:
    assert str(Invalidation("pattern", ("a*",), "ns")) == "pattern 'a*' (namespace 'ns')"
    assert str(Invalidation("namespace", ("ns",))) == "namespace 'ns'"


async def test_turns_are_handed_over_in_order_and_waits_time_out() -> None:
    turns = Turns(1)
    turns.free -= 1  # taken
    order: list[str] = []

    async def wait(name: str) -> None:
        assert await turns.wait(10.0)
        order.append(name)

    first = asyncio.create_task(wait("first"))
    second = asyncio.create_task(wait("second"))
    await asyncio.sleep(0)
    turns.release()  # to the first in line, not back to the pool
    await first
    assert (order, turns.free) == (["first"], 0)
    turns.release()
    await second
    assert order == ["first", "second"]
    turns.release()
    assert turns.free == 1
    turns.free -= 1
    assert not await turns.wait(0.01)  # nobody released: no turn
    turns.release()
    assert turns.free == 1


async def test_a_turn_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    turns = Turns(1)
    turns.free -= 1
    cancelled = asyncio.create_task(turns.wait(10.0))
    waiting = asyncio.create_task(turns.wait(10.0))
    await asyncio.sleep(0)
    turns.release()  # handed to `cancelled`, which is cancelled before it resumes
    cancelled.cancel()
    assert await waiting
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    turns.release()
    assert turns.free == 1  # every turn accounted for


# --- configuration -------------------------------------------------------------------------


def test_cluster_mode_from_the_url_scheme() -> None:
    assert RedisBackend("redis+cluster://127.0.0.1:1").cluster
    assert RedisBackend("rediss+cluster://127.0.0.1:1").cluster
    assert not RedisBackend("redis://127.0.0.1:1").cluster
    assert not RedisBackend("unix:///tmp/redis.sock").cluster
    assert RedisBackend("redis://127.0.0.1:1", cluster=True).cluster


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://127.0.0.1", {}),
        ("unix:///tmp/redis.sock", {"cluster": True}),
        ("redis://127.0.0.1", {"cluster": True, "key_prefix": "a{b}"}),
        ("redis://127.0.0.1", {"key_prefix": ""}),
    ],
)
def test_bad_configuration_is_refused(url: str, options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RedisBackend(url, **options)  # type: ignore[arg-type]


def test_from_settings() -> None:
    settings = CacheSettings(backend="redis", redis_url="redis://127.0.0.1:1/2", key_prefix="app")
    backend = RedisBackend.from_settings(settings)
    assert backend.layout.base == "app:"
    assert not backend.cluster
    with pytest.raises(ConfigurationError):
        RedisBackend.from_settings(CacheSettings())


@pytest.mark.parametrize(
    ("pattern", "match"),
    [
        ("user:*", "user:*"),
        ("user:?", "user:*"),
        ("user:[a-z]1", "user:*1"),
        ("user:[^\\]]x", "user:*x"),
        ("a\\?b\\[c", "a\\?b\\[c"),
        ("*", "*"),
    ],
)
def test_scan_match_admits_every_key_the_pattern_matches(pattern: str, match: str) -> None:
    assert server_match(GlobPattern.compile(pattern)) == match
