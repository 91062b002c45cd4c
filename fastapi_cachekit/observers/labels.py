"""Bounded label values: what keeps a metric's series count finite, whatever the traffic.

Namespaces, route templates and reasons come from the application, and each distinct value
of a label is one more time series for every metric that carries it. A `BoundedLabel` keeps
the first `limit` distinct values it sees and answers `OTHER` for any value after them, so a
label can never have more than `limit + 1` values (plus "" for "none").
"""

from __future__ import annotations

__all__ = ["OTHER", "BoundedLabel"]

OTHER = "__other__"
"""The label value of everything past the limit (not a valid-looking namespace or route)."""


class BoundedLabel:
    """The first `limit` distinct values pass as they are; later ones become `OTHER`."""

    def __init__(self, limit: int, name: str = "label") -> None:
        if limit < 1:
            raise ValueError(f"{name}_limit must be at least 1 (got {limit})")
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if value is None:
            return ""
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        return OTHER

    @property
    def seen(self) -> frozenset[str]:
        """The values kept so far (at most `limit`)."""
        return frozenset(self._seen)
