"""The collector and the runner themselves: markers, chains, output checks and guards."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from tests.docs.markdown_blocks import Block, MarkdownFile, parse
from tests.docs.runner import chain_of, run_chain


def page(tmp_path: Path, text: str) -> MarkdownFile:
    path = tmp_path / "page.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return parse(path)


def run(file: MarkdownFile, monkeypatch: pytest.MonkeyPatch, index: int = -1) -> dict[str, object]:
    block = file.blocks[index]
    return run_chain(chain_of(file.blocks, block), monkeypatch, frozenset({str(file.path)}))


def test_markers_set_continuation_and_reasons(tmp_path: Path) -> None:
    file = page(
        tmp_path,
        """\
        # Title

        ```python
        x = 1
        ```

        <!-- continue -->
        ```python
        y = x + 1
        ```

        <!-- not-run: needs a database -->
        ```python
        connect()
        ```

        ```sh
        make test
        ```
        """,
    )
    assert not file.problems
    first, second, third = file.blocks
    assert (first.line, first.continues, first.skip_reason) == (4, False, None)
    assert (second.line, second.continues) == (9, True)
    assert third.skip_reason == "needs a database"
    assert [fence.language for fence in file.fences] == ["python", "python", "python", "sh"]
    assert chain_of(file.blocks, second) == [first, second]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- not-run -->\n```python\nx = 1\n```\n", "needs a reason"),
        ("<!-- not-run:   -->\n```python\nx = 1\n```\n", "needs a reason"),
        ("<!-- continue -->\n```sh\nls\n```\n", "only ```python blocks are run"),
        ("<!-- continue -->\nSome text.\n```python\nx = 1\n```\n", "right before a block"),
        ("<!-- continue -->\n", "not followed by a block"),
        ("<!-- continue: why -->\n```python\nx = 1\n```\n", "takes no argument"),
        ("<!-- redis: please -->\n```python\nx = 1\n```\n", "takes no argument"),
        ("<!-- redis -->\n<!-- redis -->\n```python\nx = 1\n```\n", "twice"),
        ("<!-- redis -->\n<!-- not-run: why -->\n```python\nx = 1\n```\n", "no other marker"),
        ("<!-- redis -->\n```sh\nredis-cli ping\n```\n", "only ```python blocks are run"),
    ],
)
def test_marker_misuse_is_reported(tmp_path: Path, text: str, problem: str) -> None:
    problems = page(tmp_path, text).problems
    assert len(problems) == 1
    assert problem in problems[0]


def test_redis_markers_stack_with_continue(tmp_path: Path) -> None:
    file = page(
        tmp_path,
        """\
        <!-- redis -->
        ```python
        x = 1
        ```

        <!-- continue -->
        ```python
        y = x
        ```

        <!-- continue -->
        <!-- redis -->
        ```python
        z = y
        ```

        ```python
        w = 0
        ```
        """,
    )
    assert not file.problems
    first, second, third, fourth = file.blocks
    assert (first.needs_redis, first.continues) == (True, False)
    assert (second.needs_redis, second.continues) == (False, True)
    assert (third.needs_redis, third.continues) == (True, True)
    assert (fourth.needs_redis, fourth.continues) == (False, False)


def test_indented_fences_and_expected_output(tmp_path: Path) -> None:
    file = page(
        tmp_path,
        """\
        !!! note

            ```python
            print("a")
            #> a
            ```
        """,
    )
    (block,) = file.blocks
    assert block.source == 'print("a")\n#> a'
    assert block.expected_output == ["a"]


def test_formatted_output_markers_count_too(tmp_path: Path) -> None:
    (block,) = page(tmp_path, "```python\nprint(1)\n# > 1\n    #>  2\n#>\n```\n").blocks
    assert block.expected_output == ["1", " 2", ""]


def test_top_level_await_and_continuation_share_a_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = page(
        tmp_path,
        """\
        ```python
        import asyncio

        value = await asyncio.sleep(0, result=41)
        ```

        <!-- continue -->
        ```python
        print(value + 1)
        #> 42
        ```
        """,
    )
    namespace = run(file, monkeypatch)
    assert namespace["value"] == 41
    assert namespace["__name__"] == "__main__"


def test_a_block_may_run_its_own_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = page(
        tmp_path,
        """\
        ```python
        import asyncio

        async def main() -> int:
            return 3

        print(asyncio.run(main()))
        #> 3
        ```
        """,
    )
    run(file, monkeypatch)


def test_wrong_output_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = page(tmp_path, '```python\nprint("yes")\n#> no\n```\n')
    with pytest.raises(AssertionError, match="printed other lines"):
        run(file, monkeypatch)


@pytest.mark.parametrize(
    "code",
    [
        # Blocks that would sleep (the runner must refuse them; the tests do not sleep).
        "import asyncio\nawait asyncio.sleep(" + "5)",
        "import time\ntime.sleep(" + "5)",
        "from asyncio import sleep\nasync def nap():\n    await sleep(1)\nawait nap()",
    ],
)
def test_real_sleeps_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str
) -> None:
    file = page(tmp_path, f"```python\n{code}\n```\n")
    with pytest.raises(AssertionError, match="sleep"):
        run(file, monkeypatch)


def test_network_connections_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9))\n"
        "except OSError:\n"
        "    pass"
    )
    file = page(tmp_path, f"```python\n{code}\n```\n")
    with pytest.raises(AssertionError, match="network connection"):
        run(file, monkeypatch)


def test_allowed_addresses_may_be_connected_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a `<!-- redis -->` chain gets for the session's redis-server: that address only."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        monkeypatch.setenv("DOCS_TEST_PORT", str(port))
        code = (
            "import os, socket\n"
            "port = int(os.environ['DOCS_TEST_PORT'])\n"
            "socket.create_connection(('127.0.0.1', port)).close()\n"
            "try:\n"
            "    socket.create_connection(('127.0.0.1', port + 1))\n"
            "except OSError:\n"
            "    pass"
        )
        file = page(tmp_path, f"```python\n{code}\n```\n")
        block = file.blocks[0]
        allowed = frozenset({("127.0.0.1", port)})
        with pytest.raises(AssertionError) as refused:
            run_chain([block], monkeypatch, frozenset({str(file.path)}), allowed)
    assert f"a network connection to ('127.0.0.1', {port + 1})" in str(refused.value)
    assert f"('127.0.0.1', {port})" not in str(refused.value)


def test_errors_point_at_the_markdown_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = page(tmp_path, "Text.\n\n```python\nx = 1\nraise ValueError(x)\n```\n")
    with pytest.raises(ValueError, match="1") as caught:
        run(file, monkeypatch)
    frame = caught.traceback[-1]
    assert (Path(str(frame.path)).name, frame.lineno + 1) == ("page.md", 5)


def test_a_chain_through_a_not_run_block_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = page(
        tmp_path,
        "<!-- not-run: demo -->\n```python\nx = 1\n```\n\n"
        "<!-- continue -->\n```python\nprint(x)\n```\n",
    )
    with pytest.raises(AssertionError, match="not run"):
        run(file, monkeypatch)


def test_block_names_are_repository_paths() -> None:
    from tests.docs.markdown_blocks import REPO

    block = Block(REPO / "docs" / "faq.md", 12, "pass")
    assert str(block) == "docs/faq.md:12"
