"""@cached keeps a function's parameter and result types for a type checker, async or sync.

Runs mypy --strict on a small module: the types it reveals are the promise."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

SAMPLE = """
from typing_extensions import assert_type
import asyncio
from fastapi_cachekit import CacheService, MemoryBackend, cached

from fastapi import FastAPI

cache = CacheService(MemoryBackend())
app = FastAPI()

@cached(app)
async def from_the_app(user_id: int) -> str:
    return ""

@cached(lambda: cache)
async def from_a_function(user_id: int) -> bytes:
    return b""

@cached(cache, tags=lambda user_id: [f"user:{user_id}"], condition=bool)
async def load(user_id: int, verbose: bool = False) -> list[str]:
    return []

@cached(cache)
def load_sync(user_id: int) -> dict[str, int]:
    return {}

async def use() -> None:
    assert_type(await load(1), list[str])
    assert_type(await load_sync(1), dict[str, int])
    assert_type(await from_the_app(1), str)
    assert_type(await from_a_function(1), bytes)
    assert_type(load_sync.cache_key(1), str)
    assert_type(await load_sync.cache_invalidate(1), bool)
    assert_type(asyncio.create_task(load(1)), asyncio.Task[list[str]])
    await load("one")  # E: arg-type
    await load_sync(1, 2)  # E: call-arg
    load_sync(1).bit_length()  # E: attr-defined (the cached sync function is awaitable)
    cached(42)  # E: arg-type
"""


def test_cached_functions_keep_their_types(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(SAMPLE)
    report, _, _ = mypy_api.run(["--strict", "--no-error-summary", str(sample)])
    errors = sorted(
        (int(line.split(":")[1]), line.rsplit("[", 1)[-1].rstrip("]"))
        for line in report.splitlines()
        if ": error:" in line
    )
    lines = SAMPLE.splitlines()
    expected = sorted(
        (number, text.split("# E: ")[1].split()[0])
        for number, text in enumerate(lines, start=1)
        if "# E: " in text
    )
    assert errors == expected, report
