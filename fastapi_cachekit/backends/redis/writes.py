"""The SET script's call for one entry, built in one place for `set` and `set_many`, so that
a batch writes exactly what the single-key write does (see `scripts.SET` for the arguments).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .layout import Shard

__all__ = ["expiry", "set_call", "write_labels"]


def expiry(now: float, ttl: float | None) -> tuple[float, int | str]:
    """The envelope's expiry (ms; inf: never) and Redis' own PX, never before it ("": none)."""
    if ttl is None:
        return math.inf, ""
    return (now + ttl) * 1000.0, max(1, math.ceil(ttl * 1000.0))


def write_labels(namespace: str | None, tags: Sequence[str]) -> list[str]:
    """The index labels of an entry: "n:{namespace}" first if any, then "t:{tag}" each."""
    labels = [f"n:{namespace}"] if namespace else []
    labels += [f"t:{tag}" for tag in tags]
    return labels


def set_call(
    shard: Shard, key: str, data: bytes, px: int | str, token: int | bytes, labels: list[str]
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of the SET script storing envelope `data` under full key `key`, indexed
    under every label (at most `ops.SET_LABELS` of them: wider writes go through `set_wide`).

    The labels go along, so that the script need not parse `data` for them; every key the
    script touches is declared.
    """
    index = shard.prefix
    keys = [shard.entry(key), *shard.write_keys, *(index + label for label in labels)]
    return keys, [data, px, token, key, b"", len(labels), *labels]
