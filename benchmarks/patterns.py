"""Worst-case glob matching: random patterns against random keys, and the slowest match.

    python -m benchmarks.patterns                 # 10,000 patterns x 10,000 keys (minutes)
    python -m benchmarks.patterns --patterns 500  # a quicker look

Every pattern is matched against every key, pattern by pattern; the slowest pattern's keys
are then timed one by one for the slowest single match. Patterns mix literals, `*` (often
several, the case that made the old matcher backtrack), `?`, classes and escapes, and always
include the classic backtracking worst case, `*******x`. Keys are up to MAX_KEY_LENGTH
characters over a small alphabet, so that partial matches, the expensive part, are frequent.
Seeded: two runs draw the same inputs.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

from fastapi_cachekit.keys import MAX_KEY_LENGTH, GlobPattern

_ALPHABET = "ab:x/0"
_RETIMED = 20  # the slowest patterns of the first pass, timed again
_PINNED = ["*******x", "*" * 30 + "x", "*a" * 40 + "*b", "?*" * 40 + "!"]


def random_key(rng: random.Random) -> str:
    length = rng.choice([rng.randint(1, 100), rng.randint(1, MAX_KEY_LENGTH)])
    return "".join(rng.choices(_ALPHABET, k=length))


def random_pattern(rng: random.Random) -> str:
    tokens = [_random_token(rng) for _ in range(rng.randint(1, 40))]
    return "".join(tokens)


def _random_token(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.35:
        return "*"
    if roll < 0.45:
        return "?"
    if roll < 0.55:
        low, high = sorted(rng.choices(_ALPHABET, k=2))
        return rng.choice(["[", "[^"]) + f"{low}-{high}]"
    if roll < 0.58:
        return "\\" + rng.choice("*?[")
    return rng.choice(_ALPHABET)


def _seconds_for(pattern: GlobPattern, keys: Sequence[str]) -> float:
    matches = pattern.matches
    started = time.perf_counter()
    for key in keys:
        matches(key)
    return time.perf_counter() - started


def _slowest_pattern(
    candidates: Sequence[tuple[float, str]], keys: Sequence[str]
) -> tuple[float, str]:
    """The slowest of the candidates, each timed again as the best of 3: on a busy machine a
    pattern preempted once would otherwise pass for the slowest."""
    retimed = []
    for _, source in candidates:
        pattern = GlobPattern.compile(source)
        retimed.append((min(_seconds_for(pattern, keys) for _ in range(3)), source))
    return max(retimed)


def _slowest_single(pattern: GlobPattern, keys: Sequence[str]) -> tuple[float, str]:
    """The slowest key's time, each key timed as the best of 5 (to see past preemption)."""
    return max((min(_seconds_for(pattern, [key]) for _ in range(5)), key) for key in keys)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.patterns", description=__doc__)
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    keys = [random_key(rng) for _ in range(args.keys)]
    sources = _PINNED + [random_pattern(rng) for _ in range(args.patterns - len(_PINNED))]
    started = time.perf_counter()
    timed = [(_seconds_for(GlobPattern.compile(source), keys), source) for source in sources]
    total = time.perf_counter() - started
    worst_seconds, worst_source = _slowest_pattern(sorted(timed)[-_RETIMED:], keys)
    single, key = _slowest_single(GlobPattern.compile(worst_source), keys)
    matches = len(sources) * len(keys)
    print(f"{len(sources):,} patterns x {len(keys):,} keys = {matches:,} matches in {total:.1f} s")
    print(f"mean per match:          {total / matches * 1e6:.2f} µs")
    print(f"slowest pattern, {len(keys):,} keys: {worst_seconds * 1e3:.1f} ms  {worst_source!r}")
    print(f"slowest single match:    {single * 1e6:.1f} µs  (key of {len(key)} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
