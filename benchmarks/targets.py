"""The project's performance targets, read off a run's results: the summary table.

Each target names the section and row of `python -m benchmarks.run` that measures it and the
figure to read: the row's ratio to its floor, its time relative to another row (`compare`),
or a number the row reports in `extra` (bytes per entry). `python -m benchmarks.report` puts
the table into the README and the Benchmarks page of the docs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TARGETS", "Target", "summary_table"]

_UNCACHED = "FastAPI endpoint, uncached"


@dataclass(frozen=True)
class Target:
    """One target: `figure` of row `row` in section `section` must be at most `limit`.

    `figure` is "ratio" (the row's ratio to its floor), "vs:<row>" (the row's time relative to
    that row's, as `harness.compare` records it) or "extra:<name>" (a number the row reports).
    """

    what: str
    section: str
    row: str
    limit: float
    figure: str = "ratio"
    unit: str = "x"

    def measured(self, rows: dict[str, dict[str, Any]]) -> tuple[float | None, float | None]:
        """(median figure, best-of-R figure) from the section's rows by name; None if absent."""
        row = rows.get(self.row)
        if row is None:
            return None, None
        extra = row.get("extra") or {}
        if self.figure == "ratio":
            return row.get("ratio"), row.get("ratio_best")
        if self.figure.startswith("vs:"):
            other = self.figure[3:]
            return extra.get(f"ratio_vs:{other}"), extra.get(f"ratio_best_vs:{other}")
        return extra.get(self.figure.removeprefix("extra:")), None

    @property
    def strict(self) -> bool:
        """A relative time must be below its limit ("faster"); other figures may equal it."""
        return self.figure.startswith("vs:")

    def allows(self, value: float) -> bool:
        return value < self.limit if self.strict else value <= self.limit


TARGETS: tuple[Target, ...] = (
    Target("memory get-hit / dict floor", "memory", "get-hit: cachekit CacheService", 8),
    Target("memory set / dict floor", "memory", "set: cachekit CacheService", 10),
    Target(
        "Redis get-hit / raw GET, sequential", "redis", "get-hit seq: cachekit CacheService", 1.15
    ),
    Target(
        "Redis get-hit / raw GET, 50 tasks", "redis", "get-hit x50: cachekit CacheService", 1.15
    ),
    Target(
        "Redis set with 2 tags / raw SET, sequential",
        "redis",
        "set seq with 2 tags: cachekit CacheService",
        1.3,
    ),
    Target(
        "Redis set with 2 tags / raw SET, 50 tasks",
        "redis",
        "set x50 with 2 tags: cachekit CacheService",
        1.3,
    ),
    Target(
        "Redis get_many of 50 / raw pipeline of 50 GET",
        "batch",
        "get 50 keys: cachekit CacheService.get_many",
        1.2,
    ),
    Target(
        "Redis set_many of 50 / raw pipeline of 50 SET EX",
        "batch",
        "set 50 keys: cachekit CacheService.set_many",
        1.2,
    ),
    Target(
        "hybrid L1 hit / memory backend hit",
        "hybrid",
        "L1 hit: cachekit CacheService, hybrid",
        1.2,
    ),
    Target(
        "hybrid set / raw SET, sequential",
        "hybrid",
        "set: cachekit CacheService, hybrid",
        1.3,
    ),
    Target(
        "hybrid tag invalidation / Redis tag invalidation",
        "hybrid",
        "invalidate a tag of 2 entries: cachekit CacheService, hybrid",
        1.0,
    ),
    Target(
        "CacheMiddleware hit / bare ASGI, in-process (httpx)",
        "http",
        "cachekit CacheMiddleware hit (ttl=60)",
        1.5,
    ),
    Target(
        "CacheMiddleware hit / bare ASGI, under uvicorn (wrk)",
        "http-server",
        "cachekit CacheMiddleware hit (ttl=60)",
        1.3,
    ),
    Target(
        "@cached_route hit / same endpoint uncached, in-process (httpx)",
        "http",
        "cachekit @cached_route hit",
        1.0,
        figure=f"vs:{_UNCACHED}",
    ),
    Target(
        "@cached_route hit / same endpoint uncached, under uvicorn (wrk)",
        "http-server",
        "cachekit @cached_route hit",
        1.0,
        figure=f"vs:{_UNCACHED}",
    ),
    Target(
        "memory invalidate 10 of 1M / 10 of 1k",
        "scale",
        "invalidate 10 by tag among 1M",
        2,
    ),
    Target(
        "memory bytes per entry beyond the value, 100k entries",
        "scale",
        "bytes per entry at 100k entries (no namespace, no tag)",
        300,
        figure="extra:overhead_bytes_per_entry",
        unit=" B",
    ),
)


def _format(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}{unit}" if unit == " B" else f"{value:.2f}{unit}"


def _verdict(target: Target, median: float | None, best: float | None) -> str:
    if median is None:
        return "not measured"
    if target.allows(median):
        return "met"
    if best is not None and target.allows(best):
        return "met on best-of-R only"
    return "**not met**"


def _rows_by_section(sections: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        section["name"]: {row["name"]: row for row in section.get("rows", [])}
        for section in sections
    }


def summary_table(runs: Sequence[Sequence[dict[str, Any]]]) -> str:
    """The targets as a markdown table, from the sections of one or more runs.

    Every ratio is measured within one run; across runs the table gives each run's median
    ratio, their median (the verdict's figure) and the best best-of-R ratio of any run.
    """
    tables = [_rows_by_section(sections) for sections in runs]
    lines = [
        "| target | limit | each run (median) | median of runs | best-of-R | verdict | section |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for target in TARGETS:
        figures = [target.measured(table.get(target.section, {})) for table in tables]
        medians = [median for median, _ in figures if median is not None]
        bests = [best for _, best in figures if best is not None]
        median = statistics.median(medians) if medians else None
        best = min(bests) if bests else None
        limit = ("< " if target.strict else "≤ ") + _format(target.limit, target.unit)
        cells = (
            target.what,
            limit,
            " / ".join(_format(value, target.unit) for value, _ in figures),
            _format(median, target.unit),
            _format(best, target.unit),
            _verdict(target, median, best),
            f"`{target.section}`",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
