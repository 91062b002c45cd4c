"""The demo's database: SQLite in one file, shared by every worker process.

Each worker opening its own in-memory data would break under `--workers 2`: a price update
reaches one worker's copy, and another worker then caches its old price again. A file every
worker opens has one truth. Its path is DEMO_DATABASE, by default a file in the temp dir.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from pydantic import BaseModel

SEED = [(1, "Keyboard", 49.0), (2, "Mouse", 19.5), (3, "Monitor", 229.0)]


class Product(BaseModel):
    id: int
    name: str
    price: float


def default_path() -> Path:
    """DEMO_DATABASE, else `fastapi-cachekit-demo.sqlite3` in the temp dir."""
    configured = os.environ.get("DEMO_DATABASE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "fastapi-cachekit-demo.sqlite3"


class ProductStore:
    """Products in a SQLite file. Blocking calls: run them in a worker thread (a sync
    function under @cached is)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connection() as db:  # every worker seeds; the first one wins
            db.execute("CREATE TABLE IF NOT EXISTS product (id INTEGER PRIMARY KEY, name, price)")
            db.executemany("INSERT OR IGNORE INTO product VALUES (?, ?, ?)", SEED)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # One connection per call: sqlite3 connections must not cross threads.
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:  # commits on success
            yield db

    def get(self, product_id: int) -> Product | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT id, name, price FROM product WHERE id = ?", (product_id,)
            ).fetchone()
        return None if row is None else Product(id=row[0], name=row[1], price=row[2])

    def ids(self) -> list[int]:
        with self._connection() as db:
            return [row[0] for row in db.execute("SELECT id FROM product ORDER BY id")]

    def set_price(self, product_id: int, price: float) -> bool:
        """Whether the product exists (and now has `price`)."""
        with self._connection() as db:
            changed = db.execute(
                "UPDATE product SET price = ? WHERE id = ?", (price, product_id)
            ).rowcount
        return changed == 1
