"""A MemoryError while encoding or storing a value is a cache fault: the write is skipped,
logged and counted, and the caller carries on (the process runs out of memory for real, see
tests/out_of_memory.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
_BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


def _run(backend: str, url: str, case: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.out_of_memory", backend, url, case],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return answer


@pytest.fixture(params=_BACKENDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, str]:
    if request.param == "memory":
        return "memory", ""
    request.getfixturevalue("clean_redis")
    return "redis", str(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("case", ["set_raw", "set"])
def test_out_of_memory_while_storing_skips_the_write(backend: tuple[str, str], case: str) -> None:
    answer = _run(*backend, case)
    assert answer == {"returned": False, "errors": 1, "warm": 1, "stored": False}


def test_out_of_memory_in_a_fill_returns_the_value_unstored(backend: tuple[str, str]) -> None:
    answer = _run(*backend, "get_or_set")
    assert answer == {"returned": 200 << 20, "errors": 1, "warm": 1, "stored": False}


def test_out_of_memory_in_a_batch_skips_it_and_tells_each_key_not_stored() -> None:
    answer = _run("memory", "", "set_many")
    assert answer == {
        "returned": 0,
        "errors": 1,
        "warm": 1,
        "stored": False,
        "told": [["small", "out_of_memory"], ["big", "out_of_memory"]],
    }
