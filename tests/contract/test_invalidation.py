"""Invalidation by namespace, tags and glob pattern: exact matches and exact counts."""

from __future__ import annotations

import pytest

from fastapi_cachekit import CacheService, InvalidKeyError


async def test_invalidate_namespace_removes_exactly_that_namespace(cache: CacheService) -> None:
    await cache.set("profile", 1, namespace="user:123")
    await cache.set("settings", 2, namespace="user:123")
    await cache.set("profile", 3, namespace="user:1234")
    await cache.set("profile", 4, namespace="user")
    await cache.set("user:123:other", 5)  # same prefix, but written without a namespace
    assert await cache.invalidate_namespace("user:123") == 2
    assert await cache.get("profile", namespace="user:123") is None
    assert await cache.get("settings", namespace="user:123") is None
    assert await cache.get("profile", namespace="user:1234") == 3
    assert await cache.get("profile", namespace="user") == 4
    assert await cache.get("user:123:other") == 5


async def test_a_namespace_and_a_key_never_collide(cache: CacheService) -> None:
    # All three read "tenant:acme:x:report" as full keys, yet they are three entries.
    await cache.set("report", "x's", namespace="tenant:acme:x")
    await cache.set("x:report", "acme's", namespace="tenant:acme")
    await cache.set("tenant:acme:x:report", "nobody's")
    assert await cache.get("report", namespace="tenant:acme:x") == "x's"
    assert await cache.get("x:report", namespace="tenant:acme") == "acme's"
    assert await cache.get("tenant:acme:x:report") == "nobody's"
    assert await cache.invalidate_namespace("tenant:acme:x") == 1
    assert await cache.get("x:report", namespace="tenant:acme") == "acme's"
    assert await cache.delete("x:report", namespace="tenant:acme")
    assert await cache.get("tenant:acme:x:report") == "nobody's"
    assert (await cache.get_stats()).total_entries == 1


async def test_invalidate_unknown_namespace_is_zero(cache: CacheService) -> None:
    assert await cache.invalidate_namespace("nobody") == 0


async def test_invalidate_tags_removes_entries_with_any_tag(cache: CacheService) -> None:
    await cache.set("product:456", 1, tags=["products", "category:electronics"])
    await cache.set("product:789", 2, tags=["products", "category:electronics"])
    await cache.set("product:1", 3, tags=["products", "category:books"])
    await cache.set("user:1", 4, tags=["users"])
    assert await cache.invalidate_tags(["category:electronics"]) == 2
    assert await cache.get("product:456") is None
    assert await cache.get("product:1") == 3
    assert await cache.invalidate_tags(["category:books", "users", "nope"]) == 2
    assert await cache.get("user:1") is None


async def test_an_entry_with_several_matching_tags_counts_once(cache: CacheService) -> None:
    await cache.set("k", 1, tags=["a", "b"])
    assert await cache.invalidate_tags(["a", "b"]) == 1


async def test_overwrite_replaces_tags(cache: CacheService) -> None:
    await cache.set("k", 1, tags=["old"])
    await cache.set("k", 2, tags=["new"])
    assert await cache.invalidate_tags(["old"]) == 0
    assert await cache.get("k") == 2
    assert await cache.invalidate_tags(["new"]) == 1


async def test_empty_tag_list_means_no_tags(cache: CacheService) -> None:
    await cache.set("k", 1, tags=[])
    assert await cache.invalidate_tags([]) == 0
    assert await cache.get("k") == 1


async def test_a_single_string_is_not_a_tag_list(cache: CacheService) -> None:
    with pytest.raises(InvalidKeyError, match=r"tags=\['products'\]"):
        await cache.set("k", 1, tags="products")
    assert not await cache.exists("k")
    with pytest.raises(InvalidKeyError):
        await cache.invalidate_tags("products")


async def test_tags_and_namespace_together(cache: CacheService) -> None:
    await cache.set("a", 1, namespace="ns", tags=["t"])
    await cache.set("b", 2, namespace="other", tags=["t"])
    assert await cache.invalidate_namespace("ns") == 1
    assert await cache.invalidate_tags(["t"]) == 1


KEYS = [
    "user:1",
    "user:12",
    "user:2:profile",
    "user/a/b",
    "users",
    "product:a",
    "product:b",
    "product:c",
    "product:-",
    "star*key",
    "q?mark",
    "br[ack]et",
]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("user:*", {"user:1", "user:12", "user:2:profile"}),
        ("user*", {"user:1", "user:12", "user:2:profile", "user/a/b", "users"}),
        ("user:?", {"user:1"}),
        ("user:??", {"user:12"}),
        ("*profile", {"user:2:profile"}),
        ("user/*", {"user/a/b"}),
        ("product:[ab]", {"product:a", "product:b"}),
        ("product:[a-b]", {"product:a", "product:b"}),
        ("product:[^a]", {"product:b", "product:c", "product:-"}),
        ("product:[!ab]", {"product:c", "product:-"}),
        ("product:[-]", {"product:-"}),
        ("star\\*key", {"star*key"}),
        ("q\\?mark", {"q?mark"}),
        ("br\\[ack\\]et", {"br[ack]et"}),
        ("users", {"users"}),
        ("nothing*", set()),
    ],
)
async def test_glob_dialect(cache: CacheService, pattern: str, expected: set[str]) -> None:
    for key in KEYS:
        await cache.set(key, key)
    assert await cache.invalidate_pattern(pattern) == len(expected)
    remaining = {key for key in KEYS if await cache.exists(key)}
    assert remaining == set(KEYS) - expected


async def test_pattern_within_a_namespace_matches_the_key(cache: CacheService) -> None:
    await cache.set("page:1", 1, namespace="products")
    await cache.set("page:2", 2, namespace="products")
    await cache.set("page:1", 3, namespace="orders")
    await cache.set("products:page:3", 4)  # no namespace, so not considered
    assert await cache.invalidate_pattern("page:*", namespace="products") == 2
    assert await cache.get("page:1", namespace="orders") == 3
    assert await cache.get("products:page:3") == 4


async def test_pattern_without_namespace_matches_full_keys(cache: CacheService) -> None:
    await cache.set("page:1", 1, namespace="products")
    await cache.set("page:1", 2, namespace="orders")
    assert await cache.invalidate_pattern("products:*") == 1
    assert await cache.get("page:1", namespace="orders") == 2


@pytest.mark.parametrize(
    ("pattern", "namespace", "removed"),
    [
        ("tenant:acme:x:report", None, 3),  # a full key names every entry that reads so
        ("tenant:acme:x:repor?", None, 3),
        ("*:x:*", None, 3),
        ("*", "tenant:acme:x", 1),  # within a namespace, only its own entries
        ("x:*", "tenant:acme", 1),
        ("report", "tenant:acme", 0),
    ],
)
async def test_patterns_match_full_keys_as_they_read(
    cache: CacheService, pattern: str, namespace: str | None, removed: int
) -> None:
    await cache.set("report", 1, namespace="tenant:acme:x")
    await cache.set("x:report", 2, namespace="tenant:acme")
    await cache.set("tenant:acme:x:report", 3)
    assert await cache.invalidate_pattern(pattern, namespace=namespace) == removed
    assert (await cache.get_stats()).total_entries == 3 - removed


@pytest.mark.parametrize("pattern", ["", None, 5])
async def test_bad_patterns_are_refused(cache: CacheService, pattern: object) -> None:
    with pytest.raises(InvalidKeyError):
        await cache.invalidate_pattern(pattern)  # type: ignore[arg-type]
