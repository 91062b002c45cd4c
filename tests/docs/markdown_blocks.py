"""Find the fenced code blocks of markdown files, with the markers that say how to run them.

Conventions (also described in docs/getting-started.md, "About the examples"):

- Every ```python block is run by tests/docs/test_code_blocks.py.
- `<!-- continue -->` on the line right before a block runs it in the namespace left by the
  previous ```python block of the same file.
- `<!-- not-run: reason -->` on the line right before a block skips it; the reason is required.
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
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|continue)\b(?P<rest>.*?)-->\s*$")


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
    pending: tuple[int, str, str] | None = None  # (line, kind, rest) of a marker
    i = 0
    while i < len(lines):
        text = lines[i]
        marker = _MARKER.match(text)
        opening = _OPEN.match(text)
        if marker:
            if pending is not None:
                result.problems.append(f"{path.name}:{pending[0]}: marker not followed by a block")
            pending = (i + 1, marker["kind"], marker["rest"])
            i += 1
            continue
        if opening is None:
            if pending is not None and text.strip():
                result.problems.append(
                    f"{path.name}:{pending[0]}: a marker must be on the line right before a block"
                )
                pending = None
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
        elif pending is not None:
            result.problems.append(
                f"{path.name}:{pending[0]}: marker before a ```{language} block; "
                "only ```python blocks are run"
            )
        pending = None
        i = end + 1
    if pending is not None:
        result.problems.append(f"{path.name}:{pending[0]}: marker not followed by a block")
    return result


def _block(
    path: Path,
    line: int,
    body: str,
    marker: tuple[int, str, str] | None,
    problems: list[str],
) -> Block:
    if marker is None:
        return Block(path, line, body)
    marker_line, kind, rest = marker
    if kind == "continue":
        if rest.strip():
            problems.append(f"{path.name}:{marker_line}: `<!-- continue -->` takes no argument")
        return Block(path, line, body, continues=True)
    reason = rest.strip().removeprefix(":").strip()
    if not rest.strip().startswith(":") or not reason:
        problems.append(
            f"{path.name}:{marker_line}: `not-run` needs a reason: <!-- not-run: why -->"
        )
    return Block(path, line, body, skip_reason=reason or "")
