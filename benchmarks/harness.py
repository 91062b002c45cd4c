"""The measuring harness: timed cases, result rows, the markdown table and the JSON report.

A case runs `ops` operations in a tight async loop. Every case of a section is repeated
`repeats` times, interleaved (one repetition of each case in turn, the order rotated each
round) in one process and one event loop, with a garbage collection before each repetition,
so that drift on the machine affects every row alike. What exists before the first repetition
(modules, stores and their data) is frozen out of the collector meanwhile (`gc.freeze`), so
those collections stay cheap and sweep only what the repetitions made. A row reports the
median throughput, its inverse (µs per op), the spread over the repetitions and the ratio to
its baseline (the section's floor for that operation): how many times slower it is.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "HEADER",
    "Case",
    "Row",
    "Runner",
    "compare",
    "error_row",
    "format_table",
    "info_row",
    "measure",
    "measure_plan",
    "row_from_samples",
    "unavailable_row",
    "with_ratios",
]

# A case's body: run `n` operations; return the seconds they took when the body timed itself
# (it excludes per-op setup from the measurement), or None to be timed from the outside.
Runner = Callable[[int], Awaitable["float | None"]]


@dataclass(frozen=True)
class Case:
    """One measured row: a name, its body and the row it is compared with."""

    name: str
    run: Runner
    ops: int
    baseline: str | None = None
    note: str = ""
    warmup: int = 0


@dataclass
class Row:
    """One line of a section's table (and of the JSON report)."""

    name: str
    status: str = "ok"  # ok | info | not available | skipped | error
    ops_per_s: float | None = None
    us_per_op: float | None = None
    ops_per_s_min: float | None = None
    ops_per_s_max: float | None = None
    ops_per_s_iqr: float | None = None
    ops: int | None = None
    repeats: int | None = None
    baseline: str | None = None
    ratio: float | None = None
    ratio_best: float | None = None  # the same from the best repetitions: steadier under load
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def unavailable_row(name: str, reason: str, status: str = "not available") -> Row:
    """A row for something that cannot be measured here (a missing module or tool)."""
    return Row(name=name, status=status, note=reason)


def error_row(name: str, exc: BaseException) -> Row:
    """A row for a case whose set-up or run failed."""
    return Row(name=name, status="error", note=f"{type(exc).__name__}: {exc}")


def info_row(name: str, note: str, **extra: Any) -> Row:
    """A row that reports a figure other than a throughput (bytes, a latency, a count)."""
    return Row(name=name, status="info", note=note, extra=dict(extra))


async def measure(
    cases: Sequence[Case], repeats: int, *, seconds: float | None = None
) -> list[Row]:
    """Run every case `repeats` times, interleaved; one row per case, ratios filled in.

    With `seconds`, each case's operation count is first scaled so that one repetition lasts
    about that long: a fast floor timed over a few milliseconds would otherwise see less of
    the machine's noise than a slow row timed over a tenth of a second, and bias the ratios.
    """
    for case in cases:
        if case.warmup:
            await case.run(case.warmup)
    if seconds is not None:
        cases = [await _scaled(case, seconds) for case in cases]
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    # Objects that exist now (modules, stores, working sets) are frozen out of the collector,
    # so the collection before each repetition only sweeps what the repetitions made.
    gc.collect()
    gc.freeze()
    try:
        for round_no in range(repeats):
            shift = round_no % len(cases) if cases else 0
            for case in [*cases[shift:], *cases[:shift]]:
                samples[case.name].append(await _time_once(case))
    finally:
        gc.unfreeze()
    rows = [
        row_from_samples(
            case.name, samples[case.name], case.ops, baseline=case.baseline, note=case.note
        )
        for case in cases
    ]
    return with_ratios(rows)


async def measure_plan(
    plan: Sequence[Case | Row], repeats: int, *, seconds: float | None = None
) -> list[Row]:
    """Measure the cases of `plan` together; rows in plan order (ready rows kept as they are)."""
    cases = [item for item in plan if isinstance(item, Case)]
    measured = iter(await measure(cases, repeats, seconds=seconds))
    rows = [next(measured) if isinstance(item, Case) else item for item in plan]
    return with_ratios(rows)


async def _scaled(case: Case, seconds: float) -> Case:
    """`case` with as many operations as take about `seconds` (one untimed run of them
    builds whatever the body prepares for that count)."""
    throughput = await _time_once(case)
    ops = max(1, round(throughput * seconds))
    await case.run(ops)
    return replace(case, ops=ops)


async def _time_once(case: Case) -> float:
    gc.collect()
    start = time.perf_counter()
    inner = await case.run(case.ops)
    elapsed = time.perf_counter() - start if inner is None else inner
    return case.ops / max(elapsed, 1e-12)


def row_from_samples(
    name: str,
    samples: Sequence[float],
    ops: int | None,
    *,
    baseline: str | None = None,
    note: str = "",
) -> Row:
    """A row from throughputs (ops/s) measured once per repetition."""
    ordered = sorted(samples)
    median = statistics.median(ordered)
    iqr = 0.0
    if len(ordered) >= 4:
        quartiles = statistics.quantiles(ordered, n=4)
        iqr = quartiles[2] - quartiles[0]
    return Row(
        name=name,
        ops_per_s=median,
        us_per_op=1e6 / median,
        ops_per_s_min=ordered[0],
        ops_per_s_max=ordered[-1],
        ops_per_s_iqr=iqr,
        ops=ops,
        repeats=len(ordered),
        baseline=baseline,
        note=note,
    )


def compare(rows: Sequence[Row], name: str, other: str) -> None:
    """Add to row `name`'s note how it compares with row `other` (both measured)."""
    by_name = {row.name: row for row in rows}
    row, ref = by_name.get(name), by_name.get(other)
    if row is None or ref is None or not row.ops_per_s or not ref.ops_per_s:
        return
    ratio = ref.ops_per_s / row.ops_per_s
    row.extra[f"ratio_vs:{other}"] = ratio
    if row.ops_per_s_max and ref.ops_per_s_max:
        row.extra[f"ratio_best_vs:{other}"] = ref.ops_per_s_max / row.ops_per_s_max
    row.note = "; ".join(filter(None, [row.note, f"{ratio:.2f}x the time of {other}"]))


def with_ratios(rows: list[Row]) -> list[Row]:
    """Fill in each row's ratios: baseline throughput / row throughput (x times slower),
    from the medians and from the best repetitions."""
    by_name = {row.name: row for row in rows}
    for row in rows:
        base = row if row.baseline is None else by_name.get(row.baseline)
        if base is None or not row.ops_per_s or not base.ops_per_s:
            continue
        row.ratio = base.ops_per_s / row.ops_per_s
        if row.ops_per_s_max and base.ops_per_s_max:
            row.ratio_best = base.ops_per_s_max / row.ops_per_s_max
    return rows


# --- presentation ----------------------------------------------------------------------------

# The columns of every table (the docs tests read the page's tables by these positions).
HEADER = (
    "row",
    "ops/s (median)",
    "µs/op",
    "spread ops/s (min-max)",
    "ratio",
    "ratio, best-of-R",
    "vs",
    "note",
)


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table."""
    lines = [_line(HEADER), _line(tuple("---" for _ in HEADER))]
    lines += [_line(_cells(row)) for row in rows]
    return "\n".join(lines)


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def _cells(row: Row) -> tuple[str, ...]:
    if row.ops_per_s is None or row.us_per_op is None:
        note = row.note if row.status == "info" else f"{row.status}: {row.note}"
        return (row.name, "—", "—", "—", "—", "—", "", note)
    spread = f"{_count(row.ops_per_s_min)}-{_count(row.ops_per_s_max)}"
    vs = "floor" if row.baseline is None else row.baseline
    return (
        row.name,
        _count(row.ops_per_s),
        _micros(row.us_per_op),
        spread,
        _ratio(row.ratio),
        _ratio(row.ratio_best),
        vs,
        row.note,
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _micros(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"
