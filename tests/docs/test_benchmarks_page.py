"""The Benchmarks page and the README: their generated tables parse, and
benchmarks/report.py writes them.

The tables between the markers come from a run's JSON (`python -m benchmarks.report`); these
tests check their shape and that every target names a row the suite measures, not their
figures, so the files can be refreshed at any time.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import pytest

from benchmarks import harness
from benchmarks.harness import Row, with_ratios
from benchmarks.report import FILES, PAGE, README, SUMMARY, TABLES, Block, rewrite
from benchmarks.run import SECTIONS
from benchmarks.targets import TARGETS, Target, summary_table

HEADER = list(harness.HEADER)  # the cells are unpacked by these positions below
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
_COUNT = re.compile(r"^\d{1,3}(,\d{3})*$")
_MICROS = re.compile(r"^(\d{1,3}(,\d{3})*|\d+\.\d+)$")
_RATIO = re.compile(r"^\d+\.\d\dx$")
_SECTION = re.compile(r"^#### .+ \(`(?P<name>[\w-]+)`\)$")


def generated(text: str, block: Block = TABLES) -> str:
    """The part of a file between a block's markers."""
    assert block.start in text, f"the file has lost its start marker {block.start!r}"
    assert block.end in text, f"the file has lost its end marker {block.end!r}"
    return text[text.index(block.start) + len(block.start) : text.index(block.end)]


def tables(block: str) -> dict[str, list[list[str]]]:
    """Section name -> table rows (cells), read from a generated block."""
    found: dict[str, list[list[str]]] = {}
    section = None
    for line in block.splitlines():
        heading = _SECTION.match(line)
        if heading:
            section = heading["name"]
            assert section not in found, f"section {section} appears twice"
            found[section] = []
        elif line.startswith("|"):
            assert section is not None, f"a table row before any section heading: {line}"
            cells = [cell.strip() for cell in _CELL_SEPARATOR.split(line)[1:-1]]
            found[section].append(cells)
    return found


def check_table(name: str, rows: list[list[str]]) -> None:
    assert rows[0] == HEADER, f"{name}: unexpected header {rows[0]}"
    assert all(cell == "---" for cell in rows[1]), f"{name}: no separator line"
    assert len(rows) > 2, f"{name}: no rows"
    for cells in rows[2:]:
        assert len(cells) == len(HEADER), f"{name}: {cells}"
        row, ops, micros, spread, ratio, best, _vs, note = cells
        assert row, f"{name}: a row without a name"
        if ops == "—":  # an info, skipped or "not available" row: the note says what
            assert (micros, spread, ratio, best) == ("—",) * 4, f"{name}: {cells}"
            assert note, f"{name}: {row} has neither figures nor a note"
            continue
        assert _COUNT.match(ops), f"{name}: {row}: ops/s {ops!r}"
        assert _MICROS.match(micros), f"{name}: {row}: µs/op {micros!r}"
        low, _, high = spread.partition("-")
        assert _COUNT.match(low), f"{name}: {row}: spread {spread!r}"
        assert _COUNT.match(high), f"{name}: {row}: spread {spread!r}"
        for value in (ratio, best):
            assert value == "—" or _RATIO.match(value), f"{name}: {row}: ratio {value!r}"


def test_the_pages_tables_parse() -> None:
    block = generated(PAGE.read_text(encoding="utf-8"))
    assert "- Command: `python -m benchmarks.run" in block
    assert re.search(r"- Started: \d{4}-\d\d-\d\dT\d\d:\d\d", block)
    found = tables(block)
    assert found, "the page has no benchmark tables"
    assert set(found) <= set(SECTIONS)
    for name, rows in found.items():
        check_table(name, rows)


def sample_report() -> dict[str, object]:
    rows = with_ratios(
        [
            Row("floor: dict", ops_per_s=2e6, us_per_op=0.5, ops_per_s_min=1e6, ops_per_s_max=3e6),
            Row(
                "cachekit | piped",
                ops_per_s=5e5,
                us_per_op=2.0,
                ops_per_s_min=4e5,
                ops_per_s_max=6e5,
                baseline="floor: dict",
            ),
            Row("bytes per entry", status="info", note="303 B beyond the value"),
            Row("peer", status="not available", note="cannot import: peer"),
        ]
    )
    as_json = [asdict(row) for row in rows]
    del as_json[0]["ratio_best"]  # a JSON from an older harness lacks newer fields
    return {
        "environment": {"command": "python -m benchmarks.run --section memory", "time": "t"},
        "sections": [{"name": "memory", "title": "Memory", "seconds": 1.5, "rows": as_json}],
    }


def test_report_renders_tables_that_parse() -> None:
    found = tables(TABLES.render([sample_report()]))
    assert list(found) == ["memory"]
    check_table("memory", found["memory"])
    assert found["memory"][3][4:6] == ["4.00x", "5.00x"]
    assert found["memory"][3][0] == "cachekit \\| piped"


def test_rewrite_replaces_only_the_generated_parts() -> None:
    page = (
        f"# Title\n\n{SUMMARY.start}\nold summary\n{SUMMARY.end}\n\nProse.\n\n"
        f"{TABLES.start}\nold tables\n{TABLES.end}\n\nMore prose.\n"
    )
    once = rewrite(page, (SUMMARY, TABLES), [sample_report()])
    assert once.startswith(f"# Title\n\n{SUMMARY.start}")
    assert f"{SUMMARY.end}\n\nProse.\n\n{TABLES.start}" in once
    assert once.endswith(f"{TABLES.end}\n\nMore prose.\n")
    assert "old tables" not in once
    assert "old summary" not in once
    assert "| target | limit |" in generated(once, SUMMARY)
    assert rewrite(once, (SUMMARY, TABLES), [sample_report()]) == once


def test_rewrite_needs_the_markers() -> None:
    with pytest.raises(SystemExit, match="markers"):
        rewrite("# no markers here\n", (TABLES,), [sample_report()])


@pytest.mark.parametrize("path", list(FILES), ids=lambda path: path.name)
def test_the_summary_lists_every_target(path: Path) -> None:
    assert path in (README, PAGE)
    summary = generated(path.read_text(encoding="utf-8"), SUMMARY)
    assert re.search(
        r"Measured in (one run|\d+ runs, one after the other), by `python -m benchmarks.run",
        summary,
    )
    rows = [line for line in summary.splitlines() if line.startswith("| ")][2:]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [
        target.what for target in TARGETS
    ]


def test_every_target_names_a_row_of_the_page() -> None:
    # The page's tables come from a full run: a target whose row was renamed reads nothing.
    found = tables(generated(PAGE.read_text(encoding="utf-8")))
    for target in TARGETS:
        assert target.section in SECTIONS
        if target.section in found:
            names = [cells[0] for cells in found[target.section][2:]]
            assert target.row in names, f"{target.what}: no row {target.row!r}"


def _report_with(row: dict[str, object]) -> list[dict[str, object]]:
    return [{"name": "memory", "rows": [{"name": "get-hit: cachekit CacheService", **row}]}]


@pytest.mark.parametrize(
    ("ratio", "best", "verdict"),
    [
        (7.9, 7.5, "met"),
        (8.0, 7.5, "met"),
        (8.4, 7.9, "met on best-of-R only"),
        (8.4, 8.1, "**not met**"),
        (None, None, "not measured"),
    ],
)
def test_summary_verdicts(ratio: float | None, best: float | None, verdict: str) -> None:
    table = summary_table([_report_with({"ratio": ratio, "ratio_best": best})])
    line = next(line for line in table.splitlines() if line.startswith("| memory get-hit"))
    assert line.split(" | ")[5] == verdict


def test_summary_over_runs_takes_the_median_run_and_the_best_repetition() -> None:
    runs = [
        _report_with({"ratio": ratio, "ratio_best": best})
        for ratio, best in ((9.0, 8.5), (7.5, 7.2), (7.9, 7.6))
    ]
    line = next(
        line for line in summary_table(runs).splitlines() if line.startswith("| memory get-hit")
    )
    cells = line.split(" | ")
    assert cells[2:6] == ["9.00x / 7.50x / 7.90x", "7.90x", "7.20x", "met"]


def test_a_relative_time_must_be_below_its_limit() -> None:
    faster = Target("route", "http", "route hit", 1.0, figure="vs:uncached")
    row = {"extra": {"ratio_vs:uncached": 1.0, "ratio_best_vs:uncached": 0.9}}
    assert faster.measured({"route hit": row}) == (1.0, 0.9)
    assert not faster.allows(1.0)
    assert faster.allows(0.9)
