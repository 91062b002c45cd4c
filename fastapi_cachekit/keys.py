"""Key building and checking: full keys, tags, and keys for function calls.

`MAX_KEY_LENGTH`, `is_plain` (from `checks`) and `GlobPattern` (from `patterns`) are
re-exported: they are part of this module's public names.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import orjson

from .checks import CONTROL, MAX_KEY_LENGTH, check_text, is_plain
from .errors import InvalidKeyError, KeyBuildError
from .patterns import GlobPattern

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
    "pattern_covers",
    "storage_key",
]

# Keys longer than this built from function arguments are shortened with a hash.
_READABLE_CALL_KEY = 200


def check_key(key: object) -> str:
    """Return `key` if it is a usable cache key, else raise InvalidKeyError."""
    if is_plain(key):
        return key
    return check_text("key", key)


def check_namespace(namespace: object) -> str:
    """Return `namespace` if it is usable, else raise InvalidKeyError."""
    if is_plain(namespace):
        return namespace
    return check_text("namespace", namespace)


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
    checked = tuple(dict.fromkeys(check_text("tag", tag) for tag in given))
    if len(_CHECKED_TAGS) >= _CHECKED_TAGS_LIMIT:
        _CHECKED_TAGS.clear()
    _CHECKED_TAGS[given] = checked
    return checked


def full_key(key: str, namespace: str | None) -> str:
    """CacheKey.full_key: "{namespace}:{key}", or just the key (for display)."""
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


def pattern_covers(
    pattern: GlobPattern, namespace: str | None, key: str, entry_namespace: str | None
) -> bool:
    """Whether `invalidate_pattern(pattern, namespace)` applies to this entry (stored under
    `key`): the pattern is matched against its full key, or its key within `namespace`.

    The one definition: the memory backend's scan, the Redis backend's scan filter and the
    service's flights use it. Only the Redis fill check (in Lua) cannot call it: it refuses a
    fill whose key starts with the pattern's literal prefix, a superset of what is covered.
    """
    if namespace is None:
        text = display_key(key)
    elif entry_namespace == namespace:
        text = display_key(key)[len(namespace) + 1 :]
    else:
        return False
    return text.startswith(pattern.literal_prefix) and pattern.matches(text)


def hash_text(text: str) -> str:
    """A stable, short digest of `text` (the same in every process and after restarts)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


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
    if len(readable) <= _READABLE_CALL_KEY and not CONTROL.search(readable):
        return readable
    return f"{name}#{hash_text(args)}"


def bind_arguments(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name, defaults applied."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)
