"""The memory backend's record of recent invalidations, for fill tokens (`set(fill=...)`)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from ..keys import pattern_covers
from ..patterns import GlobPattern
from .base import FillToken

__all__ = ["InvalidationLog"]


class InvalidationLog:
    """The last invalidation of each label ("k:{key}", "n:{ns}", "t:{tag}", "*" for a clear),
    oldest first, and recent patterns: a fill is refused when one of its labels (or a
    pattern admitting its key) was invalidated after its token was taken.

    Past `capacity` labels (or patterns) the oldest go and `since` records the newest number
    dropped: only a fill older than that is refused for want of proof. Invalidations that
    repeat the same labels, however many, never starve a fill.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.seq = 0
        self.since = 0
        self._labels: dict[str, int] = {}
        self._patterns: deque[tuple[int, GlobPattern, str | None]] = deque()

    def record(self, labels: Iterable[str]) -> None:
        self.seq += 1
        known = self._labels
        for label in labels:
            known.pop(label, None)  # to the newest end
            known[label] = self.seq
        while len(known) > self.capacity:
            self.since = max(self.since, known.pop(next(iter(known))))

    def record_pattern(self, pattern: GlobPattern, namespace: str | None) -> None:
        self.seq += 1
        self._patterns.append((self.seq, pattern, namespace))
        if len(self._patterns) > self.capacity:
            self.since = max(self.since, self._patterns.popleft()[0])

    def covers_since(
        self, fill: FillToken, key: str, namespace: str | None, tags: tuple[str, ...]
    ) -> bool:
        """Whether an invalidation after `fill` may have covered this entry."""
        if fill == self.seq:
            return False
        if fill < self.since:
            return True
        last = self._labels.get
        if last("*", 0) > fill or last("k:" + key, 0) > fill:
            return True
        if namespace is not None and last("n:" + namespace, 0) > fill:
            return True
        if any(last("t:" + tag, 0) > fill for tag in tags):
            return True
        for seq, pattern, ns in reversed(self._patterns):  # newest first
            if seq <= fill:
                return False  # the rest came before the token
            if pattern_covers(pattern, ns, key, namespace):
                return True
        return False
