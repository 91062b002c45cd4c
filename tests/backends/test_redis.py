"""Redis backend behaviour on real servers: a single node and a 3-master cluster."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis

from fastapi_cachekit import MemoryBackend
from fastapi_cachekit.backends.base import CacheBackend
from fastapi_cachekit.backends.redis import RedisBackend
from fastapi_cachekit.backends.redis import ops as redis_ops
from fastapi_cachekit.backends.redis import scripts as redis_scripts
from fastapi_cachekit.backends.redis import writes as redis_writes
from fastapi_cachekit.backends.redis.layout import pack_envelope
from fastapi_cachekit.keys import GlobPattern
from tests.backends.redis_support import (
    BackendFactory,
    RawClient,
    entries,
    index_members,
    keys,
    listed,
    open_raw,
    server_url,
    stored,
)
from tests.clock import FakeClock
from tests.redis_servers import RedisServers

pytestmark = pytest.mark.redis

# For behaviour that lives wholly in one script on one shard: the cluster adds nothing to it.
single_node = pytest.mark.parametrize("topology", ["single"])


@pytest.fixture(params=["single", "cluster"])
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(request: pytest.FixtureRequest, topology: str, clean_redis: RedisServers) -> str:
    return server_url(request, topology)


@pytest.fixture(scope="session")
def raw_clients() -> Iterator[dict[str, RawClient]]:
    """Plain clients by URL, made once: a cluster client costs a topology discovery."""
    clients: dict[str, RawClient] = {}
    yield clients
    for client in clients.values():
        client.close()


@pytest.fixture
def raw(url: str, topology: str, raw_clients: dict[str, RawClient]) -> RawClient:
    if url not in raw_clients:
        raw_clients[url] = open_raw(url, topology == "cluster")
    return raw_clients[url]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_backend(url: str, topology: str, clock: FakeClock) -> AsyncIterator[BackendFactory]:
    async with BackendFactory(url, topology == "cluster", clock) as factory:
        yield factory


@pytest.fixture
def backend(make_backend: BackendFactory) -> RedisBackend:
    return make_backend()


def live_index_members(raw: RawClient, backend: RedisBackend, kind: str, name: str) -> set[str]:
    """The members of an index that are still in an entry list."""
    return index_members(raw, backend, kind, name) & listed(raw, backend)


async def put(
    backend: CacheBackend,
    key: str,
    value: bytes = b"v",
    *,
    ttl: float | None = None,
    namespace: str | None = None,
    tags: tuple[str, ...] = (),
) -> bool:
    return await backend.set(key, value, ttl=ttl, namespace=namespace, tags=tags)


# --- values, envelope and TTL --------------------------------------------------------------


@single_node
async def test_round_trip_stores_an_envelope(backend: RedisBackend, raw: RawClient) -> None:
    assert await put(backend, "k", b"payload", ttl=30, tags=("t",))
    assert await backend.get("k") == b"payload"
    assert await backend.exists("k")
    data = stored(raw, backend, "k")
    assert data is not None
    assert data.startswith(b"CK\x01")
    assert data.endswith(b"payload")
    entry_key = backend.layout.shard_of("k").entry("k")
    assert 29_000 < raw.pttl(entry_key) <= 30_000  # Redis expiry backs the envelope up


@single_node
async def test_ttl_follows_the_injected_clock(backend: RedisBackend, clock: FakeClock) -> None:
    await put(backend, "k", ttl=10)
    clock.advance(9.999)
    assert await backend.get("k") == b"v"
    clock.advance(0.001)  # expires_at <= now: gone, although Redis still holds it
    assert await backend.get("k") is None
    assert not await backend.exists("k")


@single_node
async def test_no_ttl_never_expires(
    backend: RedisBackend, raw: RawClient, clock: FakeClock
) -> None:
    await put(backend, "k", ttl=None)
    clock.advance(10 * 365 * 86400)
    assert await backend.get("k") == b"v"
    assert raw.pttl(backend.layout.shard_of("k").entry("k")) == -1


@single_node
async def test_a_value_that_is_not_an_envelope_is_a_miss(
    backend: RedisBackend, raw: RawClient
) -> None:
    raw.set(backend.layout.shard_of("k").entry("k"), b"written by someone else")
    assert await backend.get("k") is None
    assert not await backend.exists("k")
    assert (await backend.stats()).errors == 2


# --- indexes -------------------------------------------------------------------------------


async def test_overwrite_moves_the_entry_to_its_new_indexes(
    backend: RedisBackend, raw: RawClient
) -> None:
    await put(backend, "k", namespace="old", tags=("a", "b"))
    await put(backend, "k", namespace="new", tags=("b", "c"))
    assert index_members(raw, backend, "n", "old") == set()
    assert index_members(raw, backend, "t", "a") == set()
    assert index_members(raw, backend, "t", "c") == {"k"}
    assert await backend.invalidate_namespace("old") == 0
    assert await backend.invalidate_tags(["a"]) == 0
    assert await backend.get("k") == b"v"
    assert await backend.invalidate_tags(["c"]) == 1


@single_node
async def test_an_index_lives_as_long_as_its_longest_lived_member(
    backend: RedisBackend, raw: RawClient
) -> None:
    shard = backend.layout.shard_of("a")
    index = shard.index("t", "t")
    # Keys chosen in one shard, so that they share one index key on a cluster too.
    same_shard = [
        key for key in (f"k{i}" for i in range(200)) if backend.layout.shard_of(key) == shard
    ]
    first, second, third = same_shard[:3]
    await put(backend, first, ttl=100, tags=("t",))
    await put(backend, second, ttl=5, tags=("t",))  # shorter: must not cut `first` loose
    assert 99_000 < raw.pttl(index) <= 100_000
    await put(backend, third, ttl=None, tags=("t",))
    assert raw.pttl(index) == -1
    await put(backend, "a", ttl=1000, tags=("t",))
    assert raw.pttl(index) == -1


async def test_an_overwrite_with_the_same_labels_stays_indexed(
    backend: RedisBackend, raw: RawClient
) -> None:
    await put(backend, "k", ttl=10, namespace="n", tags=("a", "b"))
    await put(backend, "k", b"w", ttl=100, namespace="n", tags=("a", "b"))
    assert index_members(raw, backend, "t", "a") == {"k"}
    assert index_members(raw, backend, "n", "n") == {"k"}
    # Extended to the new TTL, and 1/16 more so that the next writes need not extend it.
    assert 99_000 < raw.pttl(backend.layout.shard_of("k").index("t", "a")) <= 106_250
    assert await backend.get("k") == b"w"
    assert await backend.invalidate_tags(["b"]) == 1
    # The entry's other indexes keep a dead member (removing it would touch every index of
    # every entry removed); writes and cleanup trim those.
    assert live_index_members(raw, backend, "t", "a") == set()
    assert live_index_members(raw, backend, "n", "n") == set()
    await backend.cleanup_expired()
    assert index_members(raw, backend, "t", "a") == set()
    assert index_members(raw, backend, "n", "n") == set()


async def test_namespace_invalidation_is_exact_and_counts_live_entries(
    backend: RedisBackend, clock: FakeClock
) -> None:
    await put(backend, "user:1", namespace="user")
    await put(backend, "user:2", namespace="user", ttl=1)
    await put(backend, "user:123:x", namespace="user:123")
    clock.advance(2)  # user:2 has expired: removed, but not counted
    assert await backend.invalidate_namespace("user") == 1
    assert await backend.get("user:123:x") == b"v"
    assert await backend.invalidate_namespace("user") == 0


async def test_tag_invalidation_counts_each_entry_once(backend: RedisBackend) -> None:
    await put(backend, "a", tags=("x", "y"))
    await put(backend, "b", tags=("y",))
    await put(backend, "c", tags=("z",))
    assert await backend.invalidate_tags(["x", "y", "absent"]) == 2
    assert [await backend.exists(k) for k in "abc"] == [False, False, True]


async def test_big_tags_are_removed_in_chunks(
    backend: RedisBackend, raw: RawClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_ops, "CHUNK", 25)  # the same code path, with fewer entries
    count = 3 * redis_ops.CHUNK + 17
    for i in range(count):
        await put(backend, f"item:{i}", tags=("big",), namespace="items")
    await put(backend, "other", tags=("small",))
    before = backend.redis.attempts
    assert await backend.invalidate_tags(["big"]) == count
    # One call per chunk at least: no script call worked through the whole tag at once.
    assert backend.redis.attempts - before >= math.ceil(count / redis_ops.CHUNK)
    assert set(entries(raw, backend)) == {"other"}
    assert index_members(raw, backend, "t", "big") == set()
    assert live_index_members(raw, backend, "n", "items") == set()  # no live orphans
    assert not keys(raw, "*:T:big")  # the drain keys are gone


async def test_a_drain_left_by_an_interrupted_invalidation_is_finished_by_cleanup(
    backend: RedisBackend, raw: RawClient
) -> None:
    for i in range(5):
        await put(backend, f"k{i}", tags=("t",))
    for shard in backend.layout.shards:  # as if a process died right after the first step
        if raw.exists(shard.index("t", "t")):
            raw.rename(shard.index("t", "t"), shard.drain("t", "t"))
    await backend.cleanup_expired()
    assert set(entries(raw, backend)) == set()


async def test_an_interrupted_clear_is_finished_by_the_next_sweep(
    backend: RedisBackend, raw: RawClient
) -> None:
    for i in range(30):
        await put(backend, f"k{i}", tags=("t",))
    for shard in backend.layout.shards:  # as if the process died after the clear's first step
        if raw.exists(shard.expiries):
            raw.rename(shard.expiries, shard.prefix + "X")
    await backend.cleanup_expired()
    assert [key for key in (f"k{i}" for i in range(30)) if await backend.get(key)] == []
    assert set(entries(raw, backend)) == set()


async def test_a_tag_invalidation_reads_a_bounded_number_of_labels_per_call(
    backend: RedisBackend, raw: RawClient, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries carrying many tags: each removal call reads at most LABEL_BUDGET labels (and
    at least one entry), so no call grows with the fan-out."""
    monkeypatch.setattr(redis_ops, "LABEL_BUDGET", 100)
    tags = tuple(f"tag-{i}" for i in range(150))
    for i in range(8):
        await put(backend, f"wide:{i}", tags=("wide", *tags))
    calls = backend.redis.attempts
    assert await backend.invalidate_tags(["wide"]) == 8
    # 151 labels per entry, more than the budget: one entry per call.
    assert backend.redis.attempts - calls >= 8
    assert set(entries(raw, backend)) == set()
    assert live_index_members(raw, backend, "t", "tag-7") == set()


async def test_a_write_with_many_tags_is_stored_and_indexed_under_every_tag(
    backend: RedisBackend, raw: RawClient
) -> None:
    tags = tuple(f"tag-{i}" for i in range(redis_writes.SET_LABELS + 150))
    assert await put(backend, "wide", namespace="n", tags=tags)
    assert all(index_members(raw, backend, "t", tag) == {"wide"} for tag in tags)
    assert await backend.invalidate_tags([tags[-1]]) == 1


@single_node
async def test_a_write_is_refused_when_a_tag_it_indexed_first_is_invalidated_before_it_lands(
    backend: RedisBackend, raw: RawClient
) -> None:
    """The labels past SET_LABELS are indexed by INDEX calls before the SET: an invalidation
    of one of them in between would have missed the entry, so the SET refuses (-1) and the
    backend starts again."""
    shard = backend.layout.shards[0]
    head = [f"t:head-{i}" for i in range(redis_writes.SET_LABELS)]
    keys = [shard.log_meta, shard.registry, shard.prefix + "t:late"]
    indexed_at = await backend.redis.script(redis_scripts.INDEX, keys, ["k", "+inf", "", "t:late"])
    await backend.invalidate_tags(["late"])
    envelope = pack_envelope(b"v", 0.0, math.inf, None, [label[2:] for label in head] + ["late"])
    set_keys, args = redis_scripts.set_call(
        shard, "k", envelope, "", b"", [*head, "t:late"], declared=len(head), indexed_at=indexed_at
    )
    assert await backend.redis.script(redis_scripts.SET, set_keys, args) == -1
    assert raw.get(shard.entry("k")) is None


@single_node
async def test_a_big_index_waits_for_an_earlier_drain_instead_of_merging_into_it(
    backend: RedisBackend, raw: RawClient, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_ops, "CHUNK", 25)
    shard = backend.layout.shards[0]
    for i in range(60):
        await put(backend, f"old:{i}", tags=("big",))
    raw.rename(shard.index("t", "big"), shard.drain("t", "big"))  # an earlier invalidation
    for i in range(60):
        await put(backend, f"new:{i}", tags=("big",))
    removed: list[int] = []

    async def invalidate() -> None:
        removed.append(await backend.invalidate_tags(["big"]))

    sent = await top_level_commands(url, invalidate, inside_scripts=True)
    assert removed == [120]
    assert "SUNIONSTORE" not in sent  # copying both sets would hold Redis for all 120
    assert set(entries(raw, backend)) == set()
    assert not keys(raw, "*:T:big")


@single_node
async def test_a_big_entry_list_waits_for_an_earlier_clear_instead_of_merging_into_it(
    backend: RedisBackend, raw: RawClient, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_ops, "CHUNK", 25)
    shard = backend.layout.shards[0]
    for i in range(60):
        await put(backend, f"old:{i}")
    raw.rename(shard.expiries, shard.prefix + "X")  # an earlier clear, interrupted
    for i in range(60):
        await put(backend, f"new:{i}")
    removed: list[int] = []

    async def clear() -> None:
        removed.append(await backend.clear())

    sent = await top_level_commands(url, clear, inside_scripts=True)
    assert removed == [120]
    assert "ZUNIONSTORE" not in sent
    assert set(entries(raw, backend)) == set()
    assert not raw.exists(shard.prefix + "X")


# --- patterns ------------------------------------------------------------------------------

PATTERN_KEYS = [
    "user:1",
    "user:12",
    "user:2:profile",
    "user:*",
    "user:[a]",
    "users",
    "post:1",
    "a/b/c",
    "x?y",
    "xzy",
    "^caret",
    "é",
    "user:é",
    "user:日本",
]
PATTERNS = [
    "user:*",
    "user:?",
    "user:1*",
    "user:\\*",
    "user:\\[a]",
    "user:[0-9]",
    "user:[^1]*",
    "user:[!1]*",
    "*",
    "*/c",
    "x\\?y",
    "x?y",
    "^*",
    "[a-p]*",
    "nothing",
    "?",
    "user:??",
    "user:[à-ÿ]",
    "user:[^a-z0-9]",
    "[é]",
]


async def test_patterns_agree_with_the_memory_backend(backend: RedisBackend) -> None:
    for pattern in PATTERNS:
        memory = MemoryBackend(max_items=1000)
        await backend.clear()
        for key in PATTERN_KEYS:
            for target in (backend, memory):
                await put(target, key)
        compiled = GlobPattern.compile(pattern)
        expected = await memory.invalidate_pattern(compiled, None)
        assert await backend.invalidate_pattern(compiled, None) == expected, pattern
        for key in PATTERN_KEYS:
            assert await backend.exists(key) == await memory.exists(key), (pattern, key)


async def test_namespaced_patterns_agree_with_the_memory_backend(backend: RedisBackend) -> None:
    written = [("1", "n[s]"), ("12", "n[s]"), ("a:1", "n[s]"), ("1", "other"), ("n[s]:9", None)]
    for pattern in ["*", "1*", "?", "[0-9]", "a*"]:
        memory = MemoryBackend(max_items=1000)
        await backend.clear()
        for key, namespace in written:
            full = key if namespace is None else f"{namespace}:{key}"
            for target in (backend, memory):
                await put(target, full, namespace=namespace)
        compiled = GlobPattern.compile(pattern)
        expected = await memory.invalidate_pattern(compiled, "n[s]")
        assert await backend.invalidate_pattern(compiled, "n[s]") == expected, pattern
        for key, namespace in written:
            full = key if namespace is None else f"{namespace}:{key}"
            assert await backend.exists(full) == await memory.exists(full), (pattern, full)


# --- key prefix isolation ------------------------------------------------------------------


async def test_other_keys_in_the_database_are_never_touched(
    make_backend: BackendFactory, raw: RawClient
) -> None:
    foreign = ["other", "cachekit", "cachekitx:e:k", "cachekit3:e:k", "{cachekit}:e:k"]
    for key in foreign:
        raw.set(key, b"keep")
    mine, neighbour = make_backend(), make_backend(key_prefix="cachekit2")
    await put(mine, "k", tags=("t",), namespace="n")
    await put(neighbour, "k", tags=("t",), namespace="n")
    assert await mine.invalidate_pattern(GlobPattern.compile("*"), None) == 1
    await put(mine, "k2")
    assert await mine.clear() == 1
    assert await mine.cleanup_expired() == 0
    assert (await mine.stats()).entries == 0
    assert (await neighbour.stats()).entries == 1
    assert await neighbour.get("k") == b"v"
    for key in foreign:
        assert raw.get(key) == b"keep", key


# --- fill tokens ---------------------------------------------------------------------------


async def _invalidate(backend: RedisBackend, how: str) -> None:
    if how == "delete":
        await backend.delete("user:1")
    elif how == "namespace":
        await backend.invalidate_namespace("user")
    elif how == "tag":
        await backend.invalidate_tags(["profiles"])
    elif how == "pattern":
        await backend.invalidate_pattern(GlobPattern.compile("use?:*"), None)
    elif how == "namespaced pattern":
        await backend.invalidate_pattern(GlobPattern.compile("1"), "user")
    else:
        await backend.clear()


async def test_a_fill_after_a_covering_invalidation_is_refused(
    make_backend: BackendFactory,
) -> None:
    filler, other_process = make_backend(), make_backend()
    for how in ["delete", "namespace", "tag", "pattern", "namespaced pattern", "clear"]:
        token = await filler.fill_token()
        await _invalidate(other_process, how)
        stored_it = await filler.set(
            "user:1", b"stale", ttl=None, namespace="user", tags=("profiles",), fill=token
        )
        assert not stored_it, how
        assert await filler.get("user:1") is None


async def test_a_fill_after_unrelated_invalidations_is_stored(
    make_backend: BackendFactory,
) -> None:
    filler, other_process = make_backend(), make_backend()
    token = await filler.fill_token()
    await other_process.delete("user:2")
    await other_process.invalidate_namespace("posts")
    await other_process.invalidate_tags(["other"])
    await other_process.invalidate_pattern(GlobPattern.compile("post:*"), None)
    await other_process.invalidate_pattern(GlobPattern.compile("*"), "posts")
    assert await filler.set(
        "user:1", b"fresh", ttl=None, namespace="user", tags=("profiles",), fill=token
    )
    assert await filler.get("user:1") == b"fresh"


def same_shard_keys(backend: RedisBackend, key: str, count: int) -> list[str]:
    """`count` other keys that live in the shard of `key`."""
    shard = backend.layout.shard_of(key)
    others = (f"other-{i}" for i in itertools.count())
    return list(itertools.islice((k for k in others if backend.layout.shard_of(k) == shard), count))


async def test_a_fill_outlasting_the_log_of_unrelated_invalidations_is_stored(
    backend: RedisBackend,
) -> None:
    """More unrelated invalidations than the old 256-item log kept, during one fill: the
    log is kept per label, so the fill still finds nothing that covers it."""
    token = await backend.fill_token()
    unrelated = same_shard_keys(backend, "k", 300)
    for batch in range(0, 300, 50):
        await asyncio.gather(*(backend.delete(key) for key in unrelated[batch : batch + 50]))
    await backend.invalidate_tags([f"other-tag-{i}" for i in range(300)])
    assert await backend.set("k", b"v", ttl=None, namespace=None, tags=("t",), fill=token)
    assert await backend.get("k") == b"v"


async def test_a_fill_older_than_the_invalidation_log_is_refused(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await backend.fill_token()
    # More distinct labels than the log keeps, in the shard of "k": the log no longer reaches
    # back to the token, so the fill cannot be shown safe.
    await backend.invalidate_tags([f"other-tag-{i}" for i in range(redis_scripts.LOG_CAP + 1)])
    assert not await backend.set("k", b"v", ttl=None, namespace=None, tags=(), fill=token)
    fresh = await backend.fill_token()
    assert await backend.set("k", b"v", ttl=None, namespace=None, tags=(), fill=fresh)


# --- stats and cleanup ---------------------------------------------------------------------


async def test_stats_count_this_prefix_only(make_backend: BackendFactory, clock: FakeClock) -> None:
    backend, other_prefix = make_backend(), make_backend(key_prefix="elsewhere")
    first = clock.now
    await put(backend, "a")
    clock.advance(10)
    await put(backend, "b", value=b"x" * 50_000)
    clock.advance(10)
    await put(backend, "c", ttl=1)
    await put(other_prefix, "z")
    clock.advance(5)  # c has expired
    stats = await backend.stats()
    assert stats.entries == 2
    assert stats.oldest == pytest.approx(first, abs=0.001)
    assert stats.newest == pytest.approx(first + 10, abs=0.001)
    assert stats.memory_bytes is not None
    assert stats.memory_bytes >= 50_000


async def test_hit_and_miss_counters_are_shared(make_backend: BackendFactory) -> None:
    one, two = make_backend(), make_backend()
    await one.add_counters(3, 1)
    await two.add_counters(2, 0)
    await two.add_counters(0, 0)
    stats = await one.stats()
    assert (stats.hits, stats.misses) == (5, 1)


async def test_cleanup_removes_expired_entries_and_dead_index_members(
    backend: RedisBackend, raw: RawClient, clock: FakeClock
) -> None:
    await put(backend, "gone", ttl=1, namespace="n", tags=("t",))
    await put(backend, "evicted", ttl=None, namespace="n", tags=("t",))
    await put(backend, "stays", ttl=None, namespace="n", tags=("t",))
    raw.delete(backend.layout.shard_of("evicted").entry("evicted"))  # as maxmemory would
    clock.advance(2)
    assert await backend.cleanup_expired() == 1
    assert index_members(raw, backend, "t", "t") == {"stays"}
    assert index_members(raw, backend, "n", "n") == {"stays"}
    assert (await backend.stats()).entries == 1


@single_node
async def test_only_one_process_cleans_up_at_a_time(
    backend: RedisBackend, raw: RawClient, clock: FakeClock
) -> None:
    await put(backend, "gone", ttl=1)
    clock.advance(2)
    raw.set(backend.layout.cleanup_lock, b"another process", px=10_000)
    assert await backend.cleanup_expired() == 0
    raw.delete(backend.layout.cleanup_lock)
    assert await backend.cleanup_expired() == 1
    assert not raw.exists(backend.layout.cleanup_lock)


# --- round trips ---------------------------------------------------------------------------


async def top_level_commands(
    url: str, op: Callable[[], Awaitable[object]], *, inside_scripts: bool = False
) -> list[str]:
    """The commands `op` sent to Redis (one per round trip), seen with MONITOR; commands that
    scripts run inside Redis are left out unless `inside_scripts`."""
    watcher, marker = redis.Redis.from_url(url), redis.Redis.from_url(url)
    start_monitor: Callable[[], Any] = watcher.monitor
    marker.ping()  # connected before watching: its handshake is not in the record
    try:
        with start_monitor() as monitor:
            await op()
            marker.echo("end of op")
            sent = []
            while (command := monitor.next_command())["command"] != "ECHO end of op":
                if inside_scripts or command["client_type"] != "lua":
                    sent.append(command["command"].split(" ", 1)[0].upper())
            return sent
    finally:
        watcher.close()
        marker.close()


async def test_a_hit_is_one_get_and_a_tagged_set_one_script_call(
    redis_url: str, clean_redis: RedisServers
) -> None:
    backend = RedisBackend(redis_url)
    try:
        await put(backend, "warm-up", tags=("t",))  # connection handshake, script loaded
        tagged_set = put(backend, "k", ttl=60, namespace="n", tags=("a", "b"))
        assert await top_level_commands(redis_url, lambda: tagged_set) == ["EVALSHA"]
        assert await top_level_commands(redis_url, lambda: backend.get("k")) == ["GET"]
        assert await backend.get("k") == b"v"
    finally:
        await backend.close()


@single_node
async def test_a_small_tag_invalidation_is_two_script_calls(
    backend: RedisBackend, url: str
) -> None:
    await put(backend, "warm-up", tags=("w",))  # connection handshake, scripts loaded
    await backend.invalidate_tags(["w"])
    await put(backend, "a", tags=("t",))
    await put(backend, "b", tags=("t",))
    invalidation = backend.invalidate_tags(["t"])
    # START_INVALIDATION, which hands over the members; REMOVE, which finds the drain empty.
    assert await top_level_commands(url, lambda: invalidation) == ["EVALSHA"] * 2
    assert not await backend.exists("a")
    assert not await backend.exists("b")


async def test_scripts_unknown_to_redis_are_loaded_again(
    backend: RedisBackend, raw: RawClient
) -> None:
    await put(backend, "a", tags=("t",))
    raw.script_flush()  # as after a restart: Redis has forgotten every script
    assert await put(backend, "b", tags=("t",))
    assert await backend.invalidate_tags(["t"]) == 2
    assert backend.redis.errors == 0  # NOSCRIPT is not a fault


@single_node
async def test_calls_beyond_max_connections_wait_for_a_turn(
    make_backend: BackendFactory, raw: RawClient
) -> None:
    backend = make_backend(max_connections=2)
    await put(backend, "k")
    before = int(raw.info("clients")["connected_clients"])
    assert await asyncio.gather(*(backend.get("k") for _ in range(40))) == [b"v"] * 40
    assert int(raw.info("clients")["connected_clients"]) <= before + 1


@single_node
async def test_get_entry_gives_the_clock_time_of_expiry(
    backend: RedisBackend, clock: FakeClock
) -> None:
    await put(backend, "k", b"v", ttl=30)
    await backend.set("tagged", b"t", ttl=None, namespace="ns", tags=("a", "b"))
    await put(backend, "forever", b"f", ttl=None)
    value, expires, _, _ = await backend.get_entry("k") or (b"", None, None, ())
    assert value == b"v"
    assert expires == pytest.approx(clock.now + 30)
    assert await backend.get_entry("tagged") == (b"t", None, "ns", ("a", "b"))
    assert await backend.get_entry("forever") == (b"f", None, None, ())
    assert await backend.get_entry("absent") is None
