"""Helpers the sections share: opening stores that may be missing, and closing them; the
no-op observer whose rows show what observing costs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..harness import Row, unavailable_row
from ..workload import Store

__all__ = ["Factory", "NoOpObserver", "open_stores", "placeholder"]

Factory = Callable[[], Awaitable[Store]]


class NoOpObserver:
    """An observer that does nothing with its events: its rows price building and handing
    over the events, the cost any real observer starts from."""

    def event(self, event: object) -> None:
        pass


@contextlib.asynccontextmanager
async def open_stores(
    factories: Sequence[tuple[str, Factory]],
) -> AsyncIterator[tuple[dict[str, Store], dict[str, Row]]]:
    """Open every store; those whose package is missing become "not available" rows.

    Yields (stores by name, rows by name for the missing ones); closes the stores on exit.
    """
    stores: dict[str, Store] = {}
    missing: dict[str, Row] = {}
    try:
        for name, factory in factories:
            try:
                stores[name] = await factory()
            except ImportError as exc:
                missing[name] = unavailable_row(name, f"cannot import: {exc}")
        yield stores, missing
    finally:
        for name, store in stores.items():
            try:
                await store.close()
            except Exception as exc:  # one store's teardown must not leave the others open
                print(f"warning: closing {name} failed: {exc!r}", file=sys.stderr)


def placeholder(row: Row, name: str) -> Row:
    """A copy of a "not available" row under another row name."""
    return Row(name=name, status=row.status, note=row.note)
