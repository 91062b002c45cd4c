"""Glob patterns for pattern invalidation, compiled once and matched in linear time."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from .checks import check_text

__all__ = ["ANY_CHAR", "ANY_RUN", "CharClass", "GlobPattern", "Token", "Wildcard"]


@dataclass(frozen=True)
class CharClass:
    """`[...]`: one character within (or, negated, outside) the inclusive ranges."""

    negate: bool
    ranges: tuple[tuple[str, str], ...]


class Wildcard(enum.Enum):
    """The tokens `*` and `?` (an enum: never equal to the literal characters)."""

    ANY_RUN = "*"  # any run of characters, ":" and "/" included
    ANY_CHAR = "?"  # any one character


ANY_RUN: Final = Wildcard.ANY_RUN
ANY_CHAR: Final = Wildcard.ANY_CHAR
Token = str | Wildcard | CharClass
"""A literal character (a str of length 1), ANY_RUN, ANY_CHAR, or a CharClass."""


@dataclass(frozen=True)
class GlobPattern:
    """A glob compiled once: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`/`[!a]`, and `\\` escapes.

    `tokens` is the parsed pattern, for a backend that translates it to its own dialect.
    `literal_prefix` is the part before the first wildcard, so a backend can skip keys that
    cannot match. `has_literal` says whether any character of the pattern is literal: without
    one it can match every key.

    Matching takes time linear in the key's length for a given pattern, whatever the pattern
    (`_Segments` says how).
    """

    source: str
    tokens: tuple[Token, ...]
    segments: _Segments
    literal_prefix: str
    has_literal: bool

    @classmethod
    def compile(cls, pattern: str) -> GlobPattern:
        check_text("pattern", pattern)
        return _compile_glob(pattern)

    def matches(self, text: str) -> bool:
        return self.segments.match(text)


@dataclass(frozen=True)
class _Segments:
    """A glob split at its stars into segments of one-character tokens (`a`, `?`, `[a-z]`).

    A segment has no star, so it always spans as many characters as it has tokens, and a
    regular expression of it has no quantifier: `re` cannot backtrack inside one. The stars
    between segments are then placed greedily: `head` at the start, each middle segment at its
    leftmost occurrence after the previous one, `tail` at the end. Leftmost is always right:
    an earlier end leaves the rest of the key more room. Each segment is searched once, so a
    match costs O(len(key) * len(pattern)) at worst, where one regex with several `.*` costs
    O(len(key) ** stars) when it fails.
    """

    head: re.Pattern[str]
    middle: tuple[re.Pattern[str], ...]
    tail: re.Pattern[str] | None  # None: the pattern has no star
    tail_length: int

    def match(self, text: str) -> bool:
        if self.tail is None:
            return self.head.fullmatch(text) is not None
        found = self.head.match(text)
        end = len(text) - self.tail_length
        if found is None or end < found.end() or self.tail.fullmatch(text, end) is None:
            return False
        start = found.end()
        for segment in self.middle:
            found = segment.search(text, start, end)
            if found is None:
                return False
            start = found.end()
        return True


@lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> GlobPattern:
    tokens = tuple(_tokens(pattern))
    prefix: list[str] = []
    for token in tokens:
        if not isinstance(token, str):
            break
        prefix.append(token)
    return GlobPattern(
        source=pattern,
        tokens=tokens,
        segments=_split_at_stars(tokens),
        literal_prefix="".join(prefix),
        has_literal=any(isinstance(token, str) for token in tokens),
    )


def _tokens(pattern: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            tokens.append(pattern[i + 1])
            i += 2
        elif char == "[" and (end := _class_end(pattern, i)) > 0:
            tokens.append(_char_class(pattern[i + 1 : end]))
            i = end + 1
        else:
            tokens.append(ANY_RUN if char == "*" else ANY_CHAR if char == "?" else char)
            i += 1
    return tokens


def _split_at_stars(tokens: tuple[Token, ...]) -> _Segments:
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token is ANY_RUN:
            segments.append([])
        else:
            segments[-1].append(_regex_of(token))
    if len(segments) == 1:
        return _Segments(_regex(segments[0]), middle=(), tail=None, tail_length=0)
    head, *middle, tail = segments
    between = tuple(_regex(part) for part in middle if part)  # "**" leaves an empty one
    return _Segments(_regex(head), between, _regex(tail), tail_length=len(tail))


def _regex_of(token: Token) -> str:
    if isinstance(token, str):
        return re.escape(token)
    if isinstance(token, CharClass):
        members = "".join(
            re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}"
            for lo, hi in token.ranges
        )
        return f"[{'^' if token.negate else ''}{members}]"
    return "."  # ANY_CHAR (ANY_RUN splits the segments)


def _regex(parts: list[str]) -> re.Pattern[str]:
    return re.compile("".join(parts), re.DOTALL)


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal)."""
    i = start + 1
    if i < len(pattern) and pattern[i] in "^!":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1  # a leading ] is a member, as in fnmatch
    while i < len(pattern):
        if pattern[i] == "\\":
            i += 2
            continue
        if pattern[i] == "]":
            return i
        i += 1
    return -1


def _char_class(body: str) -> CharClass:
    negate = body[:1] in ("^", "!")
    if negate:
        body = body[1:]
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        low, i = _class_char(body, i)
        if i + 1 < len(body) and body[i] == "-":
            high, i = _class_char(body, i + 1)
            ranges.append((low, high) if low <= high else (high, low))
        else:
            ranges.append((low, low))
    return CharClass(negate, tuple(ranges))


def _class_char(body: str, i: int) -> tuple[str, int]:
    if body[i] == "\\" and i + 1 < len(body):
        return body[i + 1], i + 2
    return body[i], i + 1
