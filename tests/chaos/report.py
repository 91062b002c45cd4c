"""The chaos table, and its place in docs/reliability.md (between two markers of its own)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from .metrics import Outcome

__all__ = ["COLUMNS", "format_table", "format_verdict", "write_table"]

COLUMNS = (
    "scenario",
    "backend",
    "topology",
    "requests",
    "invalidations (during fault)",
    "failed",
    "dropped with killed worker",
    "p50 / p99 during (ms)",
    "p50 / p99 after (ms)",
    "back to hits (s)",
    "stale reads (longest, ms)",
    "beyond bound (bound, s)",
    "lost invalidations",
)
START = "<!-- chaos-table:start -->"
END = "<!-- chaos-table:end -->"


def format_table(outcomes: Sequence[Outcome]) -> str:
    lines = [_line(COLUMNS), _line(["---"] * len(COLUMNS))]
    lines += [_line(_cells(outcome)) for outcome in outcomes]
    return "\n".join(lines)


def _cells(o: Outcome) -> list[str]:
    return [
        o.scenario,
        o.backend,
        o.topology,
        str(o.requests),
        f"{o.writes} ({o.writes_during})",
        str(o.failed),
        str(o.dropped),
        _latency(o.during_ms),
        _latency(o.after_ms),
        "never" if o.back_to_hits is None else f"{o.back_to_hits:.2f}",
        f"{o.stale} ({o.longest_stale * 1000:.0f})",
        f"{o.beyond_bound} ({o.bound:g})",
        str(o.lost),
    ]


def _latency(pair: tuple[float, float] | None) -> str:
    return "-" if pair is None else f"{pair[0]:.0f} / {pair[1]:.0f}"


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def format_verdict(problems: Sequence[str]) -> str:
    """What the run says about the guarantees, in a sentence or a list."""
    if not problems:
        return "Every guarantee held in this run."
    return "Guarantees not met in this run:\n\n" + "\n".join(f"- {p}" for p in problems)


def write_table(page: Path, table: str, provenance: str, verdict: str) -> None:
    """Replace the text between the markers of `page` with how the table was made, the table
    and the verdict."""
    text = page.read_text()
    if START not in text or END not in text:
        raise RuntimeError(f"{page} has no {START} ... {END} block for the chaos table")
    block = f"{START}\n{provenance}\n\n{table}\n\n{verdict}\n{END}"
    pattern = re.escape(START) + ".*?" + re.escape(END)
    page.write_text(re.sub(pattern, lambda _: block, text, count=1, flags=re.DOTALL))
