"""The memory backend's indexes: the keys written with each namespace and with each tag.

With them an invalidation by namespace or tag costs O(entries removed), and the label counts
(`LabelCounting`) are the sizes of the sets, with no scan of the entries. A label whose last
key goes is dropped, so the indexes never outgrow the entries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .base import LabelCounts, top_labels

__all__ = ["LabelIndex"]


class LabelIndex:
    """The keys of each namespace (`namespaces`) and of each tag (`tags`)."""

    def __init__(self) -> None:
        self.namespaces: dict[str, set[str]] = {}
        self.tags: dict[str, set[str]] = {}

    def add(self, key: str, namespace: str | None, tags: tuple[str, ...]) -> None:
        if namespace is not None:
            self.namespaces.setdefault(namespace, set()).add(key)
        for tag in tags:
            self.tags.setdefault(tag, set()).add(key)

    def discard(self, key: str, namespace: str | None, tags: tuple[str, ...]) -> None:
        if namespace is not None:
            _discard(self.namespaces, namespace, key)
        for tag in tags:
            _discard(self.tags, tag, key)

    def in_namespace(self, namespace: str) -> Collection[str]:
        """The keys written with exactly this namespace."""
        return self.namespaces.get(namespace, ())

    def tagged(self, tags: Iterable[str]) -> set[str]:
        """The keys carrying any of `tags`."""
        members: set[str] = set()
        for tag in tags:
            members |= self.tags.get(tag, set())
        return members

    def counts(self, limit: int, dead: set[str]) -> LabelCounts:
        """The `limit` largest namespaces and tags, by their number of keys not in `dead`."""
        return LabelCounts(
            top_labels(_sizes(self.namespaces, dead), limit),
            top_labels(_sizes(self.tags, dead), limit),
        )


def _discard(index: dict[str, set[str]], label: str, key: str) -> None:
    members = index.get(label)
    if members is not None:
        members.discard(key)
        if not members:
            del index[label]


def _sizes(index: dict[str, set[str]], dead: set[str]) -> Iterable[tuple[str, int]]:
    sizes = ((label, len(keys) - len(keys & dead)) for label, keys in index.items())
    return ((label, size) for label, size in sizes if size > 0)
