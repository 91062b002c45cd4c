"""The hybrid backend's announcements travel with the change they announce: published by the
script that completes a write or an invalidation, never before it, once per operation, and at
no round trip of their own where a script can carry them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from fastapi_cachekit.backends.hybrid import HybridBackend
from fastapi_cachekit.backends.redis import Invalidation, RedisBackend
from fastapi_cachekit.backends.redis import ops as redis_ops
from fastapi_cachekit.backends.redis.channel import Channel
from fastapi_cachekit.keys import GlobPattern
from tests.backends.redis_support import elsewhere
from tests.backends.test_hybrid import put, wait_until
from tests.backends.test_redis import top_level_commands

pytestmark = pytest.mark.redis

_DEADLINE = 10.0  # seconds: only reached when something is broken
_MARKER = b'{"o":"k","a":["marker"]}'  # a harmless announcement
_NO_LABELS: dict[str, Any] = {"ttl": None, "namespace": None, "tags": ()}

Heard = Callable[[], Awaitable[Any]]


@pytest.fixture
async def hybrid(redis_url: str, clean_redis: object) -> AsyncIterator[HybridBackend]:
    backend = HybridBackend(RedisBackend(redis_url))
    await put(backend, "warm-up", b"v", tags=("warm-up",))  # subscribed, scripts loaded
    await backend.invalidate_tags(["warm-up"])
    await backend.delete("warm-up")
    yield backend
    await backend.close()


@contextlib.asynccontextmanager
async def listening(url: str, channel: str) -> AsyncIterator[Heard]:
    """A subscriber of every sender on `channel`: each call returns the next announcement,
    or the marker once `heard_until_marker` has published it."""
    async with aioredis.Redis.from_url(url) as client, client.pubsub() as pubsub:
        await pubsub.psubscribe(f"{channel}:*")
        assert (await pubsub.get_message(timeout=_DEADLINE) or {}).get("type") == "psubscribe"

        async def heard() -> Any:
            message = await pubsub.get_message(timeout=_DEADLINE)
            assert message is not None, "no announcement"
            if message["data"] == _MARKER:
                return _MARKER
            return orjson.loads(message["data"])

        yield heard


async def heard_until_marker(hybrid: HybridBackend, heard: Heard) -> list[Any]:
    """Every announcement heard before a marker that `hybrid` announces now (on its own
    channel: on a cluster, the node its announcements went through)."""
    await hybrid._announcer.publish(Invalidation("key", ("marker",)))
    messages = []
    while (message := await heard()) != _MARKER:
        messages.append(message)
    return messages


async def test_a_write_and_a_delete_are_announced_by_their_one_script_call(
    hybrid: HybridBackend, redis_url: str
) -> None:
    async with listening(redis_url, hybrid.channel) as heard:
        write = put(hybrid, "k", b"v", tags=("t",))
        assert await top_level_commands(redis_url, lambda: write) == ["EVALSHA"]
        assert await heard() == {"o": "k", "a": ["k"]}
        assert await top_level_commands(redis_url, lambda: hybrid.delete("k")) == ["EVALSHA"]
        assert await heard() == {"o": "k", "a": ["k"]}
        assert await heard_until_marker(hybrid, heard) == []


async def test_a_batch_delete_is_announced_once_by_its_last_delete(
    hybrid: HybridBackend, redis_url: str
) -> None:
    keys = ["k0", "k1", "k2"]
    for key in keys:
        await put(hybrid, key, b"v")
    calls = hybrid.l2.redis.attempts
    async with listening(redis_url, hybrid.channel) as heard:
        sent = await top_level_commands(
            redis_url, lambda: hybrid.delete_many(keys), inside_scripts=True
        )
        assert hybrid.l2.redis.attempts == calls + 1  # the pipeline: no round trip of its own
        assert await heard_until_marker(hybrid, heard) == [{"o": "k", "a": keys}]
    assert sent.count("PUBLISH") == 1
    assert sent[-1] == "PUBLISH"  # after every delete of the batch


async def test_a_batch_on_a_cluster_is_announced_by_each_write_and_after_the_deletes(
    redis_cluster_url: str, clean_redis: object
) -> None:
    """Each shard's SET_MANY call announces its own keys; the deletes run on several nodes
    at once, so no one call of them can carry the announcement, published after them."""
    hybrid = HybridBackend(RedisBackend(redis_cluster_url, cluster=True))
    keys = [f"k{i}" for i in range(8)]  # over several shards, so several nodes
    try:
        async with listening(redis_cluster_url, hybrid.channel) as heard:
            assert await hybrid.set_many([(k, b"v") for k in keys], **_NO_LABELS) == [True] * 8
            shards = {hybrid.l2.layout.shard_of(key) for key in keys}
            writes = [await heard() for _ in shards]  # from several nodes: in any order
            assert sorted(key for write in writes for key in write["a"]) == keys
            assert await hybrid.delete_many(keys) == 8
            assert await heard_until_marker(hybrid, heard) == [{"o": "k", "a": keys}]
    finally:
        await hybrid.close()


async def test_a_batch_write_is_announced_by_its_script_call(
    hybrid: HybridBackend, redis_url: str
) -> None:
    await hybrid.set_many([("warm-up", b"v")], **_NO_LABELS)  # its script loaded
    token = await hybrid.fill_token()
    await hybrid.delete("k2")  # after the token: the fill of k2 is refused
    items = [("k0", b"v"), ("k1", b"v"), ("k2", b"v")]
    async with listening(redis_url, hybrid.channel) as heard:
        batch = hybrid.set_many(items, fill=token, **_NO_LABELS)
        sent = await top_level_commands(redis_url, lambda: batch)
        assert sent == ["EVALSHA"]  # no PUBLISH of its own
        assert await heard_until_marker(hybrid, heard) == [{"o": "k", "a": ["k0", "k1", "k2"]}]


async def test_a_batch_write_that_stored_nothing_is_not_announced(
    hybrid: HybridBackend, redis_url: str
) -> None:
    token = await hybrid.fill_token()
    await hybrid.delete_many(["k0", "k1"])  # after the token: both fills are refused
    async with listening(redis_url, hybrid.channel) as heard:
        stored = await hybrid.set_many([("k0", b"v"), ("k1", b"v")], fill=token, **_NO_LABELS)
        assert await heard_until_marker(hybrid, heard) == []
    assert stored == [False, False]


@pytest.mark.parametrize("entries", [0, 2])
async def test_a_tag_invalidation_takes_no_more_round_trips_than_the_redis_backends(
    hybrid: HybridBackend, redis_url: str, entries: int
) -> None:
    alone = RedisBackend(redis_url, key_prefix="alone")
    await alone.invalidate_tags(["warm-up"])  # connected, scripts loaded
    try:
        for backend in (hybrid, alone):
            for i in range(entries):
                await put(backend, f"k{i}", b"v", tags=("t",))
        redis_sent = await top_level_commands(redis_url, lambda: alone.invalidate_tags(["t"]))
        async with listening(redis_url, hybrid.channel) as heard:
            hybrid_sent = await top_level_commands(redis_url, lambda: hybrid.invalidate_tags(["t"]))
            assert await heard_until_marker(hybrid, heard) == [{"o": "t", "a": ["t"]}]
    finally:
        await alone.close()
    assert "PUBLISH" not in hybrid_sent
    assert len(hybrid_sent) == len(redis_sent)


@pytest.mark.parametrize("tags", [["t"], ["t", "u"]])
async def test_an_invalidation_is_published_by_the_last_command_redis_runs_for_it(
    hybrid: HybridBackend, redis_url: str, monkeypatch: pytest.MonkeyPatch, tags: list[str]
) -> None:
    """Redis runs commands one at a time: a PUBLISH after every other command of the
    invalidation reaches subscribers when none of its entries is left to promote."""
    monkeypatch.setattr(redis_ops, "CHUNK", 2)  # each drain takes several script calls
    for i in range(7):
        await put(hybrid, f"k{i}", b"v", tags=tags)
    sent = await top_level_commands(
        redis_url, lambda: hybrid.invalidate_tags(tags), inside_scripts=True
    )
    assert "UNLINK" in sent
    assert sent.count("PUBLISH") == 1
    assert sent[-1] == "PUBLISH"
    assert not any([await hybrid.l2.get(f"k{i}") for i in range(7)])


@pytest.mark.parametrize("kind", ["many tags", "pattern", "clear"])
async def test_an_invalidation_no_script_can_carry_is_announced_once_after_it(
    hybrid: HybridBackend, redis_url: str, kind: str
) -> None:
    many = [f"t{i}" for i in range(150)]  # more labels than one script call takes
    await put(hybrid, "k:1", b"v", tags=(many[-1],))
    operations: dict[str, tuple[Callable[[], Awaitable[int]], dict[str, Any]]] = {
        "many tags": (lambda: hybrid.invalidate_tags(many), {"o": "t", "a": many}),
        "pattern": (
            lambda: hybrid.invalidate_pattern(GlobPattern.compile("k:*"), None),
            {"o": "p", "a": "k:*", "n": None},
        ),
        "clear": (hybrid.clear, {"o": "c", "a": []}),
    }
    operation, announced = operations[kind]
    async with listening(redis_url, hybrid.channel) as heard:
        assert await operation() == 1
        assert await heard_until_marker(hybrid, heard) == [announced]


async def test_a_subscription_hears_every_sender_but_its_own(redis_url: str) -> None:
    backend = RedisBackend(redis_url, key_prefix="senders")
    channel = Channel(backend.redis, "ck:[chan]*", sender="abcdefgh")  # Redis glob characters
    heard = []
    async with channel.subscribe(confirm_timeout=_DEADLINE) as subscription:
        raw = aioredis.Redis.from_url(redis_url)
        senders = ["abcdefgh", "xbcdefgh", "abcdefgx", "abcxefgh", "abcdefg", "abcdefghi", "-" * 8]
        for sender in senders:
            await raw.publish(f"ck:[chan]*:{sender}", sender.encode())
        await raw.publish("ck:[chan]x:xxxxxxxx", b"another channel")
        await raw.publish(f"ck:[chan]*:{'.' * 8}", b"marker")
        while (received := await subscription.receive(_DEADLINE)) != (b"marker",):
            assert received is not None, "the marker never came"
            heard.append(received.data)
        await raw.aclose()
    await backend.close()
    # Each other sender once, in order; not its own id, not ids of another length.
    assert heard == [b"xbcdefgh", b"abcdefgx", b"abcxefgh", b"--------"]


async def test_a_hybrid_process_does_not_hear_its_own_announcements(
    hybrid: HybridBackend, redis_url: str
) -> None:
    """Hearing them cost a read per write; it must hear only the others'."""
    heard: list[bytes] = []
    apply = hybrid._listener._on_message

    async def record(data: bytes) -> None:
        heard.append(data)
        await apply(data)

    hybrid._listener._on_message = record
    await put(hybrid, "k", b"v", tags=("t",))
    await hybrid.invalidate_tags(["t"])
    await hybrid.delete("k")
    await put(hybrid, "marker", b"v")
    async with aioredis.Redis.from_url(redis_url) as raw:
        await raw.publish(elsewhere(hybrid.channel), _MARKER)
    await wait_until(lambda: "marker" not in hybrid.l1._entries)
    assert heard == [_MARKER]
