"""docs/http-rfc9111.md names, for each rule, the tests that show it and the file of each test.

A test name counts only after a file name in the same table row or paragraph
(`http/test_store.py`: `test_...`), so a test that moves to another module, or is renamed,
fails here until the page follows it.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests" / "fastapi"
PAGE = ROOT / "docs" / "http-rfc9111.md"
NAMED = re.compile(r"`([\w/.]+\.py|test_\w+)`")


def defined_tests(relative: str) -> set[str]:
    source = (TESTS / relative).read_text(encoding="utf-8")
    return set(re.findall(r"^(?:async )?def (test_\w+)", source, re.MULTILINE))


def passages(page: str) -> list[str]:
    """The page cut into paragraphs, each table row on its own."""
    return re.split(r"\n\s*\n|\n(?=\|)", page)


def misplaced_names(passage: str) -> list[str]:
    """The test names in a passage that are not defined in the file named before them."""
    wrong: list[str] = []
    current: set[str] | None = None
    for name in NAMED.findall(passage):
        if name.endswith(".py"):
            current = defined_tests(name) if (TESTS / name).is_file() else set()
        elif current is None or name not in current:
            wrong.append(name)
    return wrong


def test_every_test_the_rfc_page_names_exists() -> None:
    page = PAGE.read_text(encoding="utf-8")
    wrong = [name for passage in passages(page) for name in misplaced_names(passage)]
    assert wrong == []


def test_a_name_without_its_file_or_in_another_file_is_reported() -> None:
    assert misplaced_names("`test_cc_boolean_directives`") == ["test_cc_boolean_directives"]
    assert misplaced_names("`http/test_dates.py`: `test_cc_boolean_directives`") == [
        "test_cc_boolean_directives"
    ]
    assert misplaced_names("`http/test_nothing.py`: `test_parse_imf_fixdate`") == [
        "test_parse_imf_fixdate"
    ]
    assert misplaced_names("`http/test_dates.py`:\n`test_parse_imf_fixdate`") == []
    assert passages("one\n`a.py`\n\n| `x` |\n| `y` |") == ["one\n`a.py`", "| `x` |", "| `y` |"]
