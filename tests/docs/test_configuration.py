"""The Configuration page lists exactly CacheSettings' fields, with true defaults and env vars."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from fastapi_cachekit import CacheSettings
from tests.docs.settings_table import CONFIGURATION_PAGE, END, START, render_table, rewrite

_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")  # a pipe, but not an escaped one


def documented_rows() -> dict[str, dict[str, str]]:
    """The rows of the page's settings table, by setting name, read from the markdown."""
    text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    table = text[text.index(START) : text.index(END)]
    rows: dict[str, dict[str, str]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in _CELL_SEPARATOR.split(line.strip())[1:-1]]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue  # the header, its rule, blank lines
        name, env, type_, default, description = cells
        name = name.strip("`")
        assert name not in rows, f"{name} is listed twice"
        rows[name] = {
            "env": env.strip("`"),
            "type": type_,
            "default": default.strip("`"),
            "description": description,
        }
    return rows


def test_the_table_is_generated_from_cache_settings() -> None:
    text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    assert rewrite(text) == text, (
        "docs/configuration.md is stale: run `.venv/bin/python -m tests.docs.settings_table`"
    )
    assert render_table() in text


def test_the_page_lists_exactly_the_fields() -> None:
    assert list(documented_rows()) == list(CacheSettings.model_fields)


@pytest.mark.parametrize("name", list(CacheSettings.model_fields))
def test_each_row_has_the_env_var_and_the_default(name: str) -> None:
    row = documented_rows()[name]
    assert row["env"] == f"CACHEKIT_{name.upper()}"
    assert ast.literal_eval(row["default"]) == CacheSettings.model_fields[name].default
    assert CacheSettings.model_fields[name].description, f"{name} has no description"


def _sample(name: str, default: Any) -> tuple[str, Any]:
    """A value different from the default, as an env var string and as the parsed value."""
    if isinstance(default, bool):
        return str(not default).lower(), not default
    if isinstance(default, int):
        return str(default + 7), default + 7
    if isinstance(default, float):
        return str(default + 1.5), default + 1.5
    if name == "redis_url":
        return "redis://cache.internal:6379/2", "redis://cache.internal:6379/2"
    if name == "compression":  # a literal whose alternative needs no other setting
        return "zlib", "zlib"
    if isinstance(default, str) or default is None:
        return f"sample-{name}-0123456789abcdef", f"sample-{name}-0123456789abcdef"
    raise AssertionError(f"no sample value for {name}")


def test_every_documented_env_var_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Set each variable the page names, and see the setting change (literals keep theirs)."""
    monkeypatch.chdir(tmp_path)  # no .env
    for variable in [name for name in os.environ if name.upper().startswith("CACHEKIT_")]:
        monkeypatch.delenv(variable)
    expected: dict[str, Any] = {}
    for name, row in documented_rows().items():
        default = CacheSettings.model_fields[name].default
        if name in ("backend", "serializer"):
            continue  # literals: their alternatives need other settings; validated elsewhere
        text, value = _sample(name, default)
        monkeypatch.setenv(row["env"], text)
        expected[name] = value
    settings = CacheSettings()
    for name, value in expected.items():
        got = getattr(settings, name)
        if isinstance(got, SecretStr):
            got = got.get_secret_value()
        assert got == value, f"{name}: {got!r} != {value!r}"
