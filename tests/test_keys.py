"""Keys: checks, full keys, the glob dialect, and function-call keys."""

from __future__ import annotations

import dataclasses
import enum
import fnmatch
import functools
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from fastapi_cachekit import CacheKey, InvalidKeyError, KeyBuildError, keys
from fastapi_cachekit.keys import (
    MAX_KEY_LENGTH,
    GlobPattern,
    check_key,
    check_namespace,
    check_tags,
    display_key,
    full_key,
    function_call_key,
    storage_key,
)
from fastapi_cachekit.patterns import ANY_CHAR, ANY_RUN, CharClass, Token


def test_full_key() -> None:
    assert full_key("profile", "user:123") == "user:123:profile"
    assert full_key("profile", None) == "profile"
    assert CacheKey(key="profile", namespace="user:123").full_key == "user:123:profile"
    assert CacheKey(key="profile").full_key == "profile"


_NAME = st.text(st.sampled_from("ab:"), min_size=1, max_size=6)  # colons make collisions
_PAIRS = st.tuples(_NAME, st.none() | _NAME)


@given(_PAIRS, _PAIRS)
def test_storage_keys_are_injective_and_read_as_full_keys(
    first: tuple[str, str | None], second: tuple[str, str | None]
) -> None:
    assert (storage_key(*first) == storage_key(*second)) == (first == second)
    for key, namespace in (first, second):
        assert display_key(storage_key(key, namespace)) == full_key(key, namespace)
        assert storage_key(key, namespace).startswith(full_key(key, namespace))


@given(st.text(min_size=1), st.text(min_size=1))
def test_the_storage_separator_never_passes_the_key_checks(key: str, namespace: str) -> None:
    for check in (check_key, check_namespace):
        for text in (key + "\x1f", "\x1f" + namespace):
            with pytest.raises(InvalidKeyError, match="control character"):
                check(text)


def test_tags_are_deduplicated_in_order() -> None:
    assert check_tags(["b", "a", "b"]) == ("b", "a")
    assert check_tags(None) == ()


@pytest.mark.parametrize("bad", [["ok", ""], ["ok", 7], ["ok", ["x"]], ["a\nb"]])
def test_bad_tags_are_refused_every_time(bad: list[object]) -> None:
    # The second call must not be answered from the cache of checked tuples.
    for _ in range(2):
        with pytest.raises(InvalidKeyError):
            check_tags(bad)  # type: ignore[arg-type]


def test_checked_tags_cache_is_bounded() -> None:
    for i in range(3 * keys._CHECKED_TAGS_LIMIT):
        assert check_tags([f"user:{i}", "team"]) == (f"user:{i}", "team")
    assert len(keys._CHECKED_TAGS) <= keys._CHECKED_TAGS_LIMIT


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("a*", "a:b/c", True),
        ("*", "", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("[abc]", "b", True),
        ("[a-c]x", "cx", True),
        ("[c-a]x", "bx", True),  # reversed range is normalised
        ("[^a]", "a", False),
        ("[!a]", "b", True),
        ("[]]", "]", True),
        ("[a\\]]", "]", True),
        ("\\*", "*", True),
        ("\\*", "x", False),
        ("a[", "a[", True),  # an unclosed [ is literal
        ("a\\", "a\\", True),  # a trailing backslash is literal
        ("a.b", "axb", False),  # regex characters are literal
        ("(x)", "(x)", True),
    ],
)
def test_glob_matching(pattern: str, text: str, matches: bool) -> None:
    assert GlobPattern.compile(pattern).matches(text) is matches


@pytest.mark.parametrize(
    ("pattern", "prefix"),
    [("user:*", "user:"), ("a\\*b*", "a*b"), ("*x", ""), ("abc", "abc"), ("ab[c]", "ab")],
)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert GlobPattern.compile(pattern).literal_prefix == prefix


@given(st.text(alphabet="ab:*?[]^!-\\", max_size=8), st.text(alphabet="ab:*?[]-\\", max_size=8))
def test_literal_prefix_is_a_prefix_of_every_match(pattern: str, text: str) -> None:
    if not pattern:
        return
    compiled = GlobPattern.compile(pattern)
    if compiled.matches(text):
        assert text.startswith(compiled.literal_prefix)


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("*ab*ab", "ab", False),  # the two segments may not overlap
        ("ab*ab", "abab", True),
        ("ab*ab", "aba", False),
        ("*a?c*", "xxabcxx", True),
        ("*[0-9]:*:x", "a1:b:c:x", True),
        ("a**b", "ab", True),
    ],
)
def test_stars_between_segments(pattern: str, text: str, matches: bool) -> None:
    assert GlobPattern.compile(pattern).matches(text) is matches


@pytest.mark.parametrize(
    "pattern",
    ["*" * 30 + "x", "*a" * 30 + "*b", "?*" * 30 + "x", "*[a-z]*[a-z]" * 20 + "!"],
)
def test_adversarial_patterns_do_not_backtrack(pattern: str) -> None:
    # A backtracking matcher tries every way to split the key among the stars: for these,
    # more steps than there are atoms in the universe (33 s for 7 stars and 100 chars, measured).
    assert not GlobPattern.compile(pattern).matches("a" * MAX_KEY_LENGTH)


def _reference_match(tokens: tuple[Token, ...], text: str) -> bool:
    """Reference matcher over a glob's tokens, by dynamic programming: no backtracking, fine
    for short inputs."""

    def one(token: Token, char: str) -> bool:
        if isinstance(token, CharClass):
            return any(lo <= char <= hi for lo, hi in token.ranges) != token.negate
        return token is ANY_CHAR or token == char

    @functools.cache
    def rest_matches(t: int, c: int) -> bool:
        if t == len(tokens):
            return c == len(text)
        if tokens[t] is ANY_RUN:
            return rest_matches(t + 1, c) or (c < len(text) and rest_matches(t, c + 1))
        return c < len(text) and one(tokens[t], text[c]) and rest_matches(t + 1, c + 1)

    return rest_matches(0, 0)


_GLOB_ALPHABET = "ab:é*?[]^!-\\"


@settings(max_examples=1000)
@given(st.text(alphabet=_GLOB_ALPHABET, min_size=1, max_size=10), st.text("ab:é*?[]-\\"))
def test_matching_agrees_with_a_reference_on_the_tokens(pattern: str, text: str) -> None:
    compiled = GlobPattern.compile(pattern)
    assert compiled.matches(text[:12]) is _reference_match(compiled.tokens, text[:12])


@settings(max_examples=1000)
@given(st.text(alphabet="ab*?", min_size=1, max_size=10), st.text(alphabet="ab", max_size=12))
def test_matching_agrees_with_fnmatch_where_the_dialects_meet(pattern: str, text: str) -> None:
    assert GlobPattern.compile(pattern).matches(text) is fnmatch.fnmatchcase(text, pattern)


@pytest.mark.parametrize(
    ("pattern", "has_literal"),
    [
        ("*", False),
        ("**", False),
        ("?*", False),
        ("*?", False),
        ("[a-z]*", False),
        ("[^a]", False),
        ("*a", True),
        ("user:*", True),
        ("\\*", True),
        ("[", True),  # an unclosed [ is a literal character
    ],
)
def test_has_literal(pattern: str, has_literal: bool) -> None:
    assert GlobPattern.compile(pattern).has_literal is has_literal


class Color(enum.Enum):
    RED = "red"


class Query(BaseModel):
    term: str
    limit: int = 10


@dataclasses.dataclass
class Point:
    x: int
    y: int


async def sample(a: object, b: object = None) -> None:
    return None


@pytest.mark.parametrize(
    "value",
    [
        1,
        "text",
        None,
        [1, 2],
        {"b": 1, "a": 2},
        uuid.UUID(int=5),
        datetime(2024, 1, 2, tzinfo=timezone.utc),
        Decimal("1.10"),
        Color.RED,
        Query(term="x"),
        Point(1, 2),
        {3, 1, 2},
    ],
)
def test_function_keys_accept_data_arguments(value: object) -> None:
    key = function_call_key(sample, {"a": value, "b": None})
    assert key.startswith("tests.test_keys.sample(")


def test_function_keys_ignore_dict_order_and_apply_defaults() -> None:
    first = CacheKey.from_function_call(sample, ({"a": 1, "b": 2},))
    second = CacheKey.from_function_call(sample, (), {"a": {"b": 2, "a": 1}, "b": None})
    assert first.key == second.key


def test_function_keys_differ_by_argument() -> None:
    assert function_call_key(sample, {"a": 1}) != function_call_key(sample, {"a": 2})
    assert function_call_key(sample, {"a": "1"}) != function_call_key(sample, {"a": 1})


def test_long_function_keys_are_hashed() -> None:
    key = function_call_key(sample, {"a": "x" * 5000})
    assert len(key) < 100
    assert key.startswith("tests.test_keys.sample#")


def test_unserializable_argument_names_the_parameter() -> None:
    with pytest.raises(KeyBuildError, match=r"argument 'a'.*exclude=\['a'\]"):
        function_call_key(sample, {"a": object()})


def test_excluded_arguments_are_left_out() -> None:
    assert function_call_key(sample, {"a": object(), "b": 1}, exclude=["a"]) == (
        "tests.test_keys.sample(b=1)"
    )


def test_function_keys_are_stable_across_processes() -> None:
    code = (
        "from tests.test_keys import sample, Query;"
        "from fastapi_cachekit.keys import function_call_key;"
        "print(function_call_key(sample, {'a': Query(term='x' * 300), 'b': 'é'}))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == function_call_key(sample, {"a": Query(term="x" * 300), "b": "é"})
