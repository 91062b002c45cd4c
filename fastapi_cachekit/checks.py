"""The text rules every key, namespace, tag and glob pattern obeys."""

from __future__ import annotations

import re
from typing import TypeGuard

from .errors import InvalidKeyError

__all__ = ["CONTROL", "MAX_KEY_LENGTH", "check_text", "is_plain"]

MAX_KEY_LENGTH = 1024
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def is_plain(text: object) -> TypeGuard[str]:
    """Whether `text` passes the checks' fast path: a printable str of acceptable length.

    True means it is a valid key or namespace; False means only "run the full check":
    isprintable() is also False for some valid characters (a no-break space).
    """
    return type(text) is str and 0 < len(text) <= MAX_KEY_LENGTH and text.isprintable()


def check_text(kind: str, value: object) -> str:
    """Return `value` if it is usable as a cache `kind` (key, namespace, tag, pattern)."""
    if not isinstance(value, str):
        raise InvalidKeyError(f"cache {kind} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidKeyError(f"cache {kind} must not be empty")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidKeyError(
            f"cache {kind} is {len(value)} characters long; the limit is {MAX_KEY_LENGTH} "
            "(hash long identifiers before using them in keys)"
        )
    if CONTROL.search(value):
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
