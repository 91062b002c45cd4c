"""Every ```python block in README.md and docs/ runs, and prints what its `#>` lines say.

Each block is one test, named `path:line`, run by tests/docs/runner.py in a temporary working
directory with no `CACHEKIT_*` variables (the environment is restored afterwards). A block
marked `<!-- continue -->` is run after the blocks it continues, in their namespace. A block
marked `<!-- not-run: reason -->` must have a reason, compile, and import only what exists.
A chain with a block marked `<!-- redis -->` gets `REDIS_URL`: the URL of the session's own
redis-server (tests/redis_servers.py; flushed first, never port 6379), the only address it may
connect to; without redis-server such a test skips (fails under CI=true), like every Redis test.
The conventions are in tests/docs/markdown_blocks.py.
"""

from __future__ import annotations

import ast
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.docs.markdown_blocks import (
    PYTHON_LIKE,
    Block,
    MarkdownFile,
    documentation_files,
    parse,
)
from tests.docs.runner import chain_of, compile_block, run_chain

FILES = [parse(path) for path in documentation_files()]
PAGES = {file.path: file.blocks for file in FILES}
BLOCKS = [block for file in FILES for block in file.blocks]
RUNNABLE = [block for block in BLOCKS if block.skip_reason is None]
NOT_RUN = [block for block in BLOCKS if block.skip_reason is not None]
DOC_FILENAMES = frozenset(str(file.path) for file in FILES)


def needs_redis(block: Block) -> bool:
    """Whether the chain that ends with `block` has a `<!-- redis -->` block."""
    return any(link.needs_redis for link in chain_of(PAGES[block.path], block))


def _param(block: Block) -> Any:
    marks = [pytest.mark.redis] if needs_redis(block) else []
    return pytest.param(block, marks=marks, id=str(block))


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A temporary working directory and an environment without CACHEKIT_* variables."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.upper().startswith("CACHEKIT_"):
            del os.environ[name]
    monkeypatch.chdir(tmp_path)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.usefixtures("isolated")
@pytest.mark.parametrize("block", [_param(block) for block in RUNNABLE])
def test_block_runs(
    block: Block, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    allowed: frozenset[tuple[str, int]] = frozenset()
    if needs_redis(block):
        request.getfixturevalue("clean_redis")  # skips without redis-server (fails in CI)
        url: str = request.getfixturevalue("redis_url")
        address = urlsplit(url)
        assert address.hostname is not None
        assert address.port is not None
        allowed = frozenset({(address.hostname, address.port)})
        monkeypatch.setenv("REDIS_URL", url)
    run_chain(chain_of(PAGES[block.path], block), monkeypatch, DOC_FILENAMES, allowed)


@pytest.mark.parametrize("block", NOT_RUN, ids=str)
def test_not_run_block_is_explained_and_compiles(block: Block) -> None:
    assert block.skip_reason, f"{block}: <!-- not-run: ... --> needs a reason"
    assert block.expected_output is None, f"{block}: `#>` output in a block that is not run"
    compile_block(block)


@pytest.mark.parametrize("block", BLOCKS, ids=str)
def test_block_imports_only_what_exists(block: Block) -> None:
    """Even a block that is not run names only modules and names the package has."""
    for node in ast.walk(ast.parse(block.source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fastapi_cachekit"):
            module = importlib.import_module(node.module or "")
            missing = [alias.name for alias in node.names if not hasattr(module, alias.name)]
            assert not missing, f"{block}: {node.module} has no {missing}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("fastapi_cachekit"):
                    importlib.import_module(alias.name)


@pytest.mark.parametrize("file", FILES, ids=lambda file: file.path.name)
def test_markers_and_languages(file: MarkdownFile) -> None:
    assert not file.problems
    python_like = [f"line {fence.line}" for fence in file.fences if fence.language in PYTHON_LIKE]
    assert not python_like, f"{file.path.name}: write ```python so these are run: {python_like}"
    untagged = [f"line {fence.line}" for fence in file.fences if not fence.language]
    assert not untagged, f"{file.path.name}: give these fences a language: {untagged}"


def test_the_collector_finds_the_blocks() -> None:
    pages = {file.path.name for file in FILES if file.blocks}
    assert {"README.md", "walkthrough.md", "concepts.md"} <= pages
    assert len(RUNNABLE) >= 20
    assert sum(block.expected_output is not None for block in RUNNABLE) >= 20
    assert all(block.source.strip() for block in BLOCKS)
