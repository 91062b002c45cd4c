"""`python -m benchmarks.observers` still runs (a tiny run; no timing is asserted)."""

from __future__ import annotations

import pytest

from benchmarks import observers


def test_the_observer_benchmark_prints_a_row_per_observer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    observers.main(["--calls", "50", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(observers.observers())
    assert lines[1].startswith("no observer")
