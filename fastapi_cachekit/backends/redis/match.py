"""Redis MATCH patterns for the scans behind pattern invalidation."""

from __future__ import annotations

from ...patterns import GlobPattern

__all__ = ["escape_match", "server_match"]

_SPECIAL = frozenset("*?[]\\^")


def server_match(pattern: GlobPattern) -> str:
    """A Redis MATCH pattern that admits every key `pattern` matches (a superset).

    Redis' `?` and `[...]` match one byte, Python's one character: a key with a multi-byte
    character would slip through them, so every wildcard becomes `*`; the exact test is then
    `pattern.matches` on what the scan returns.
    """
    return "".join(escape_match(t) if isinstance(t, str) else "*" for t in pattern.tokens)


def escape_match(text: str) -> str:
    """`text` as a Redis MATCH pattern that matches exactly it."""
    return "".join("\\" + char if char in _SPECIAL else char for char in text)
