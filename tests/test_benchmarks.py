"""The benchmark suite still runs: one `--quick` run of every section. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.run import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 600  # a hang guard only: a quick run takes ~15 s alone, far longer on a busy machine


def _quick_run(report_path: Path) -> dict[str, list[dict[str, Any]]]:
    argv = [sys.executable, "-m", "benchmarks.run", "--quick", "--json", str(report_path)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    report = json.loads(report_path.read_text())
    return {section["name"]: section["rows"] for section in report["sections"]}


def test_quick_run_executes_every_section(tmp_path: Path) -> None:
    rows = _quick_run(tmp_path / "bench.json")

    assert set(rows) == set(SECTIONS)
    assert all(rows[name] for name in SECTIONS), "every section reports at least one row"
    failed = [row for section in rows.values() for row in section if row["status"] == "error"]
    assert not failed
    if os.environ.get("CI") == "true":  # CI installs redis-server: nothing may be skipped
        assert not [
            row for section in rows.values() for row in section if row["status"] == "skipped"
        ]
