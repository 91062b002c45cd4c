"""Key building and checking: full keys, tags, glob patterns, and keys for function calls."""

from __future__ import annotations

import hashlib
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, TypeGuard

import orjson

from .errors import InvalidKeyError, KeyBuildError

__all__ = [
    "MAX_KEY_LENGTH",
    "GlobPattern",
    "NotInKey",
    "bind_arguments",
    "check_key",
    "check_namespace",
    "check_tags",
    "display_key",
    "full_key",
    "function_call_key",
    "hash_text",
    "is_plain",
    "not_in_key",
    "storage_key",
]

MAX_KEY_LENGTH = 1024
# Keys longer than this built from function arguments are shortened with a hash.
_READABLE_CALL_KEY = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_text(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidKeyError(f"cache {kind} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidKeyError(f"cache {kind} must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"cache {kind} is {len(value)} characters long; the limit is {MAX_KEY_LENGTH} "
            "(hash long identifiers before using them in keys)"
        )
    if _CONTROL.search(value):
        raise InvalidKeyError(f"cache {kind} {value!r} contains a control character")
    if not value.isascii():
        _check_encodable(kind, value)
    return value


def _check_encodable(kind: str, value: str) -> None:
    # Redis and every process that shares an entry see its key as UTF-8: text that has no
    # UTF-8 form (a lone surrogate, e.g. from a mis-decoded byte string) cannot be a key.
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidKeyError(
            f"cache {kind} {value!r} contains a lone surrogate "
            f"({value[exc.start]!r} at position {exc.start}), which is not valid Unicode "
            "text; decode the bytes it came from with errors='replace', or hash them"
        ) from None


def check_key(key: object) -> str:
    """Return `key` if it is a usable cache key, else raise InvalidKeyError."""
    if is_plain(key):
        return key
    return _check_text("key", key)


def is_plain(text: object) -> TypeGuard[str]:
    """Whether `text` passes the checks' fast path: a printable str of acceptable length.

    True means it is a valid key or namespace; False means only "run the full check":
    isprintable() is also False for some valid characters (a no-break space).
    """
    return type(text) is str and 0 < len(text) <= MAX_KEY_LENGTH and text.isprintable()


def check_namespace(namespace: object) -> str:
    """Return `namespace` if it is usable, else raise InvalidKeyError."""
    if is_plain(namespace):
        return namespace
    return _check_text("namespace", namespace)


# Checked tag tuples by the tuple given: an app sets the same few combinations of tags over
# and over, and one lookup costs a tenth of checking each tag again. Cleared when full, so
# per-user tags cannot make it grow without bound.
_CHECKED_TAGS: dict[tuple[object, ...], tuple[str, ...]] = {}
_CHECKED_TAGS_LIMIT = 1024


def check_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    """Normalise tags to a tuple of unique strings; None and [] both mean no tags."""
    if tags is None:
        return ()
    if isinstance(tags, (str, bytes)):
        raise InvalidKeyError(
            f"tags must be a list of strings, not a single string: write tags=[{tags!r}]"
        )
    given = tuple(tags)
    try:
        return _CHECKED_TAGS[given]
    except (KeyError, TypeError):  # TypeError: an unhashable tag, refused just below
        pass
    checked = tuple(dict.fromkeys(_check_text("tag", tag) for tag in given))
    if len(_CHECKED_TAGS) >= _CHECKED_TAGS_LIMIT:
        _CHECKED_TAGS.clear()
    _CHECKED_TAGS[given] = checked
    return checked


def full_key(key: str, namespace: str | None) -> str:
    """The spec's CacheKey.full_key: "{namespace}:{key}", or just the key (for display)."""
    return key if namespace is None else f"{namespace}:{key}"


# The full key is ambiguous: ("report", "tenant:acme:x") and ("x:report", "tenant:acme")
# both read "tenant:acme:x:report". Stored, a namespaced key is its full key, then a unit
# separator and the namespace's length: the separator is a control character, which no
# checked key or namespace holds, so the pair can always be read back. The full key stays in
# front, so that glob patterns and prefixes apply to stored keys as to the full keys.
_SEPARATOR = "\x1f"


def storage_key(key: str, namespace: str | None) -> str:
    """The key an entry is stored under: one for each (key, namespace) pair (injective)."""
    if namespace is None:
        return key
    return f"{namespace}:{key}{_SEPARATOR}{len(namespace)}"


def display_key(stored: str) -> str:
    """The full key ("{namespace}:{key}") of a key made by `storage_key`."""
    return stored.partition(_SEPARATOR)[0]


def hash_text(text: str) -> str:
    """A stable, short digest of `text` (the same in every process and after restarts)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- glob patterns -------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobPattern:
    """A glob compiled once: `*`, `?`, `[abc]`, `[a-z]`, `[^a]`/`[!a]`, and `\\` escapes.

    `*` matches any run of characters (":" and "/" included). `literal_prefix` is the part
    before the first wildcard, so a backend can skip keys that cannot match. `has_literal`
    says whether any character of the pattern is literal: without one it can match every key.

    Matching takes time linear in the key's length for a given pattern, whatever the pattern
    (`_Segments` says how).
    """

    source: str
    segments: _Segments
    literal_prefix: str
    has_literal: bool
    redis: str

    @classmethod
    def compile(cls, pattern: str) -> GlobPattern:
        _check_text("pattern", pattern)
        return _compile_glob(pattern)

    def matches(self, text: str) -> bool:
        return self.segments.match(text)

    @property
    def is_literal(self) -> bool:
        return self.literal_prefix == _unescape_all(self.source)


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


def _unescape_all(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern)


_REDIS_SPECIAL = set("*?[]\\^")
_STAR = "*"  # a star among the tokens; every other token is a one-character regex


def _redis_literal(char: str) -> str:
    return "\\" + char if char in _REDIS_SPECIAL else char


@lru_cache(maxsize=256)
def _compile_glob(pattern: str) -> GlobPattern:
    regex: list[str] = []
    redis: list[str] = []
    prefix: list[str] = []
    literal = True
    has_literal = False
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            regex.append(re.escape(pattern[i + 1]))
            redis.append(_redis_literal(pattern[i + 1]))
            has_literal = True
            if literal:
                prefix.append(pattern[i + 1])
            i += 2
            continue
        if char == "*":
            regex.append(_STAR)
            redis.append("*")
            literal = False
        elif char == "?":
            regex.append(".")
            redis.append("?")
            literal = False
        elif char == "[" and (end := _class_end(pattern, i)) > 0:
            rx, rd = _translate_class(pattern[i + 1 : end])
            regex.append(rx)
            redis.append(rd)
            literal = False
            i = end + 1
            continue
        else:
            regex.append(re.escape(char))
            redis.append(_redis_literal(char))
            has_literal = True
            if literal:
                prefix.append(char)
        i += 1
    return GlobPattern(
        source=pattern,
        segments=_split_at_stars(regex),
        literal_prefix="".join(prefix),
        has_literal=has_literal,
        redis="".join(redis),
    )


def _split_at_stars(tokens: list[str]) -> _Segments:
    segments: list[list[str]] = [[]]
    for token in tokens:
        if token == _STAR:
            segments.append([])
        else:
            segments[-1].append(token)
    if len(segments) == 1:
        return _Segments(_regex(segments[0]), middle=(), tail=None, tail_length=0)
    head, *middle, tail = segments
    between = tuple(_regex(part) for part in middle if part)  # "**" leaves an empty one
    return _Segments(_regex(head), between, _regex(tail), tail_length=len(tail))


def _regex(tokens: list[str]) -> re.Pattern[str]:
    return re.compile("".join(tokens), re.DOTALL)


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


def _translate_class(body: str) -> tuple[str, str]:
    negate = body[:1] in ("^", "!")
    if negate:
        body = body[1:]
    members: list[tuple[str, str]] = []  # (low, high) ranges of literal characters
    i = 0
    while i < len(body):
        low, i = _class_char(body, i)
        if i + 1 < len(body) and body[i] == "-":
            high, i = _class_char(body, i + 1)
            members.append((low, high) if low <= high else (high, low))
        else:
            members.append((low, low))
    regex_parts = [
        re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in members
    ]
    redis_parts = [
        _redis_literal(lo) if lo == hi else f"{_redis_literal(lo)}-{_redis_literal(hi)}"
        for lo, hi in members
    ]
    hat = "^" if negate else ""
    return f"[{hat}{''.join(regex_parts)}]", f"[{hat}{''.join(redis_parts)}]"


def _class_char(body: str, i: int) -> tuple[str, int]:
    if body[i] == "\\" and i + 1 < len(body):
        return body[i + 1], i + 2
    return body[i], i + 1


# --- function-call keys --------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """orjson `default`: turn argument types orjson lacks into stable JSON values."""
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=lambda item: orjson.dumps(item, default=_canonical))
    if isinstance(value, Enum):
        return value.value
    raise TypeError(type(value).__name__)


def _encode_argument(name: str, value: Any) -> bytes:
    try:
        return orjson.dumps(
            value,
            default=_canonical,
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
        )
    except TypeError as exc:
        raise KeyBuildError(
            f"cannot build a cache key from argument {name!r} of type {type(value).__name__}: "
            f"it is not data ({exc}). Leave it out of the key with exclude=[{name!r}] "
            "(or Annotated[..., NotInKey]), or give a key_func"
        ) from None


class _NotInKey:
    """`Annotated` marker: this parameter is not data and stays out of the cache key."""

    def __repr__(self) -> str:
        return "NotInKey"


NotInKey = _NotInKey()
"""Mark a parameter as not part of @cached's key: `session: Annotated[Session, NotInKey]`."""


def not_in_key(hints: Mapping[str, Any]) -> frozenset[str]:
    """The parameters whose type hints (`get_type_hints(..., include_extras=True)`) carry
    the NotInKey marker."""
    return frozenset(
        name
        for name, hint in hints.items()
        if typing.get_origin(hint) is Annotated
        and any(isinstance(extra, _NotInKey) for extra in hint.__metadata__)
    )


def function_call_key(
    func: Callable[..., Any], arguments: Mapping[str, Any], exclude: Iterable[str] = ()
) -> str:
    """A key for one call: module, qualified name and the arguments, stable across processes.

    `arguments` are the call's bound arguments (defaults applied); names in `exclude` are left
    out. Short keys stay readable; long ones end in a hash.
    """
    skip = set(exclude)
    parts = [
        name.encode() + b"=" + _encode_argument(name, value)
        for name, value in arguments.items()
        if name not in skip
    ]
    args = b",".join(parts).decode()
    name = f"{func.__module__}.{func.__qualname__}"
    readable = f"{name}({args})"
    if len(readable) <= _READABLE_CALL_KEY and not _CONTROL.search(readable):
        return readable
    return f"{name}#{hash_text(args)}"


def bind_arguments(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)
