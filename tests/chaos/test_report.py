"""The chaos table's place on the Reliability page."""

from __future__ import annotations

from pathlib import Path

import pytest

from .metrics import Outcome
from .report import END, START, format_table, format_verdict, write_table
from .run import PAGE

ROW = Outcome(
    "kill", "redis", "single", requests=10, writes=2, writes_during=1, failed=0, dropped=0,
    during_ms=(1.0, 2.0), after_ms=None, back_to_hits=0.5, stale=1, longest_stale=0.25,
    beyond_bound=0, bound=1.0, lost=0,
)  # fmt: skip


def test_the_table_replaces_only_its_own_block(tmp_path: Path) -> None:
    page = tmp_path / "reliability.md"
    page.write_text(f"# Reliability\n\n{START}\nold\n{END}\n\n## Another section\n")
    write_table(page, format_table([ROW]), "Measured by a test.", format_verdict(["kill: 1 lost"]))
    text = page.read_text()
    assert text.startswith("# Reliability\n\n")
    assert text.endswith(f"{END}\n\n## Another section\n")
    assert "old" not in text
    assert "| kill | redis | single | 10 | 2 (1) | 0 | 0 | 1 / 2 | - | 0.50 | 1 (250) |" in text
    assert f"Guarantees not met in this run:\n\n- kill: 1 lost\n{END}" in text


def test_a_page_without_the_markers_is_refused(tmp_path: Path) -> None:
    page = tmp_path / "reliability.md"
    page.write_text("# Reliability\n")
    with pytest.raises(RuntimeError, match="no <!-- chaos-table:start -->"):
        write_table(page, format_table([ROW]), "Measured by a test.", format_verdict([]))


def test_the_page_shows_the_columns_the_suite_measures() -> None:
    text = PAGE.read_text()
    block = text[text.index(START) : text.index(END)]
    header = format_table([]).splitlines()[0]
    assert header in block or "Not measured yet" in block
