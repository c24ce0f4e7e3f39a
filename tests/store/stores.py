"""Stores for tests that need more than the ``store`` fixture's one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.store import SQLiteStore
from garrison.store.postgres import PostgresStore
from tests.pg import TEMPLATE


@contextlib.contextmanager
def two_stores(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple]:
    """Two stores on one database (two connection pools, as two processes or replicas)."""
    if kind == "sqlite":
        path = tmp_path / "data" / "garrison.db"
        stores: tuple = (SQLiteStore(path), SQLiteStore(path))
    else:
        cluster = request.getfixturevalue("postgres")
        url = cluster.url(cluster.create_database(TEMPLATE))
        stores = (PostgresStore(url), PostgresStore(url))
    try:
        yield stores
    finally:
        for made in stores:
            made.close()
