"""Find the fenced code blocks of markdown files, with the markers that say how to run them.

Conventions (also described in docs/getting-started.md, "About the examples"):

- Every ```python block is run by tests/docs/test_code_blocks.py.
- `<!-- continue -->` on the line right before a block runs it in the namespace left by the
  previous ```python block of the same file.
- `<!-- not-run: reason -->` on the line right before a block skips it; the reason is required.
- `<!-- redis -->` right before a block runs its chain (the block, the blocks it continues and
  those continuing it) with `REDIS_URL` set to the URL of the test session's own redis-server
  (tests/redis_servers.py: a free loopback port, never 6379), flushed first; connections to it
  are let through. Markers may be stacked on consecutive lines (`redis` with `continue`).
- Lines whose text starts with `#>` (or `# >`) are the block's expected output, in order.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "PYTHON_LIKE",
    "REPO",
    "Block",
    "Fence",
    "MarkdownFile",
    "documentation_files",
    "parse",
]

REPO = Path(__file__).resolve().parents[2]
# Languages that look like Python but would not be run: write ```python instead.
PYTHON_LIKE = frozenset({"py", "py3", "python3", "pycon", "ipython", "pyi"})

_OPEN = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*?)\s*$")
_OUTPUT = re.compile(r"^\s*# ?> ?(?P<text>.*)$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|continue|redis)\b(?P<rest>.*?)-->\s*$")


@dataclass(frozen=True)
class Fence:
    """Any fenced block: its language and the line of its opening fence (1-based)."""

    language: str
    line: int


@dataclass(frozen=True)
class Block:
    """A ```python block and how it is to be run."""

    path: Path
    line: int  # the line of the first line of code (1-based)
    source: str
    skip_reason: str | None = None  # set for `<!-- not-run: ... -->`
    continues: bool = False  # set for `<!-- continue -->`
    needs_redis: bool = False  # set for `<!-- redis -->`

    @property
    def name(self) -> str:
        path = self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path
        return f"{path.as_posix()}:{self.line}"

    @property
    def expected_output(self) -> list[str] | None:
        """The `#>` lines, without the marker; None when the block has none.

        `# >`, which is how code formatters rewrite `#>`, counts too.
        """
        lines = [
            match["text"]
            for match in map(_OUTPUT.match, self.source.splitlines())
            if match is not None
        ]
        return lines or None

    def __str__(self) -> str:
        return self.name


@dataclass
class MarkdownFile:
    """The parsed file: every fence, the Python blocks, and marker misuse found on the way."""

    path: Path
    fences: list[Fence] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def documentation_files() -> list[Path]:
    """README.md and every markdown page under docs/."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def parse(path: Path) -> MarkdownFile:
    """Read `path` and find its fences, Python blocks and markers."""
    result = MarkdownFile(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    pending: list[tuple[int, str, str]] = []  # (line, kind, rest) of the markers read
    i = 0
    while i < len(lines):
        text = lines[i]
        marker = _MARKER.match(text)
        opening = _OPEN.match(text)
        if marker:
            pending.append((i + 1, marker["kind"], marker["rest"]))
            i += 1
            continue
        if opening is None:
            if pending and text.strip():
                result.problems.append(
                    f"{path.name}:{pending[0][0]}: a marker must be on the line right before a "
                    "block (or on the line before another marker)"
                )
                pending = []
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = opening["info"].split()[0].lower() if opening["info"] else ""
        close = re.compile(rf"^ {{0,{indent + 3}}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = i + 1
        while end < len(lines) and not close.match(lines[end]):
            end += 1
        body = textwrap.dedent("\n".join(line[indent:] for line in lines[i + 1 : end]))
        result.fences.append(Fence(language, i + 1))
        if language == "python":
            result.blocks.append(_block(path, i + 2, body, pending, result.problems))
        elif pending:
            result.problems.append(
                f"{path.name}:{pending[0][0]}: marker before a ```{language} block; "
                "only ```python blocks are run"
            )
        pending = []
        i = end + 1
    if pending:
        result.problems.append(f"{path.name}:{pending[0][0]}: marker not followed by a block")
    return result


def _block(
    path: Path,
    line: int,
    body: str,
    markers: list[tuple[int, str, str]],
    problems: list[str],
) -> Block:
    skip_reason: str | None = None
    continues = needs_redis = False
    seen: set[str] = set()
    for marker_line, kind, rest in markers:
        where = f"{path.name}:{marker_line}"
        if kind in seen:
            problems.append(f"{where}: `<!-- {kind} -->` twice before one block")
        seen.add(kind)
        if kind == "not-run":
            reason = rest.strip().removeprefix(":").strip()
            if not rest.strip().startswith(":") or not reason:
                problems.append(f"{where}: `not-run` needs a reason: <!-- not-run: why -->")
            skip_reason = reason or ""
        elif rest.strip():
            problems.append(f"{where}: `<!-- {kind} -->` takes no argument")
        if kind == "continue":
            continues = True
        elif kind == "redis":
            needs_redis = True
    if skip_reason is not None and len(seen) > 1:
        problems.append(
            f"{path.name}:{markers[0][0]}: a `not-run` block takes no other marker (it is not run)"
        )
    return Block(
        path, line, body, skip_reason=skip_reason, continues=continues, needs_redis=needs_redis
    )
