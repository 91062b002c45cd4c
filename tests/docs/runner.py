"""Run documentation code blocks: one `<!-- continue -->` chain at a time, guarded.

A chain runs in a fresh namespace named `__main__`. Blocks with top-level `await` run in an
event loop shared by the chain and closed the way `asyncio.run` closes its loop. While a chain
runs, a positive `asyncio.sleep`/`time.sleep` called from documentation code, and any network
connection (but those to the addresses the chain is allowed, such as the test session's own
redis-server for `<!-- redis -->` chains), are refused and reported. After the last block, a
FastAPI `app` left in the namespace has its OpenAPI schema generated, which checks that every
route is well formed.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import io
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from types import CodeType
from typing import Any

import pytest
from fastapi import FastAPI

from tests.docs.markdown_blocks import Block

__all__ = [
    "BLOCK_TIMEOUT_SECONDS",
    "Guards",
    "chain_of",
    "close_loop",
    "compile_block",
    "run_chain",
]

BLOCK_TIMEOUT_SECONDS = 30.0


def chain_of(page: Sequence[Block], block: Block) -> list[Block]:
    """`block` and the blocks of its page that it continues, first to last."""
    index = page.index(block)
    chain = [block]
    while chain[0].continues:
        if index == 0:
            raise AssertionError(f"{block}: `<!-- continue -->` on the first block of its page")
        index -= 1
        chain.insert(0, page[index])
    return chain


def compile_block(block: Block) -> CodeType:
    """The block's code object, with the line numbers of the markdown file."""
    padded = "\n" * (block.line - 1) + block.source
    code: CodeType = compile(
        padded, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    return code


class Guards:
    """Refuses real sleeps by code from `filenames`, and every network connection except to
    the `allowed` (host, port) addresses."""

    def __init__(
        self, filenames: frozenset[str], allowed: frozenset[tuple[str, int]] = frozenset()
    ) -> None:
        self.filenames = filenames
        self.allowed = allowed
        self.violations: list[str] = []

    def _called_from_docs(self) -> bool:
        # 0: this method, 1: the patched function, 2: its caller.
        return sys._getframe(2).f_code.co_filename in self.filenames

    @contextlib.contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        real_async_sleep, real_sleep = asyncio.sleep, time.sleep
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

        async def async_sleep(delay: float, result: Any = None) -> Any:
            if delay > 0 and self._called_from_docs():
                self.violations.append(f"asyncio.sleep({delay!r})")
                delay = 0
            return await real_async_sleep(delay, result)

        def sleep(delay: float) -> None:
            if delay > 0 and self._called_from_docs():
                self.violations.append(f"time.sleep({delay!r})")
                return
            real_sleep(delay)

        def allowed(address: Any) -> bool:
            return isinstance(address, tuple) and tuple(address[:2]) in self.allowed

        def connect(sock: socket.socket, address: Any) -> None:
            if allowed(address):
                real_connect(sock, address)
                return
            self.violations.append(f"a network connection to {address!r}")
            raise OSError("documentation examples must not use the network")

        def connect_ex(sock: socket.socket, address: Any) -> int:
            if allowed(address):
                return real_connect_ex(sock, address)
            connect(sock, address)
            return 1

        with monkeypatch.context() as patch:
            patch.setattr(asyncio, "sleep", async_sleep)
            patch.setattr(time, "sleep", sleep)
            patch.setattr(socket.socket, "connect", connect)
            patch.setattr(socket.socket, "connect_ex", connect_ex)
            yield


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close `loop` the way `asyncio.run` does: cancel what is left, then shut down."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _run_block(block: Block, namespace: dict[str, Any], loop: asyncio.AbstractEventLoop) -> str:
    code = compile_block(block)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if code.co_flags & inspect.CO_COROUTINE:
            awaitable = eval(code, namespace)
            loop.run_until_complete(asyncio.wait_for(awaitable, BLOCK_TIMEOUT_SECONDS))
        else:
            exec(code, namespace)
    return out.getvalue()


def run_chain(
    chain: Sequence[Block],
    monkeypatch: pytest.MonkeyPatch,
    filenames: frozenset[str],
    allowed: frozenset[tuple[str, int]] = frozenset(),
) -> dict[str, Any]:
    """Run the blocks in one namespace and check them; the namespace they leave.

    Raises AssertionError when a block prints something other than its `#>` lines, sleeps,
    connects to anything but the `allowed` (host, port) addresses, or leaves the event loop
    reporting an error.
    """
    last = chain[-1]
    skipped = [str(block) for block in chain if block.skip_reason is not None]
    assert not skipped, f"{last} continues blocks that are not run: {skipped}"
    namespace: dict[str, Any] = {"__name__": "__main__"}
    guards = Guards(filenames, allowed)
    errors: list[str] = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(str(context["message"])))
    try:
        with guards.installed(monkeypatch):
            for block in chain:
                printed = _run_block(block, namespace, loop)
                expected = block.expected_output
                if expected is not None and printed.splitlines() != expected:
                    raise AssertionError(
                        f"{block} printed other lines than its #> lines say.\n"
                        f"printed:\n{printed}\nexpected:\n" + "\n".join(expected)
                    )
            app = namespace.get("app")
            if isinstance(app, FastAPI):
                app.openapi()
                app.openapi_schema = None  # generated again on demand, with later routes
    finally:
        close_loop(loop)
    assert not guards.violations, f"{last}: {guards.violations}"
    assert not errors, f"{last}: the event loop reported {errors}"
    return namespace
