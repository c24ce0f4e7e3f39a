"""Persistence behind an interface: ``Store`` (the seam), ``SQLiteStore`` (one host),
``PostgresStore`` (a console for many hosts; imported from ``garrison.store.postgres``, so
that only a console using it loads its driver) and ``MemoryStore`` (the fake for tests of other
parts); their schema and its migrations; and the data directory's owner-only modes, which every
file Garrison keeps there is made with (``datadir``). ``StoreTokenBook`` (a store as the book of
fleet enrolment tokens) is imported from ``garrison.store.tokenbook``: it loads
``garrison.fleet``, which a defender opening its store does not need."""

from __future__ import annotations

from typing import TYPE_CHECKING

from garrison.store.base import BlockedContainer, HostRecord, Store
from garrison.store.datadir import create_private_file, open_private, secure_data_dir
from garrison.store.memory import MemoryStore

if TYPE_CHECKING:
    from garrison.store.sqlite import DB_NAME, SQLiteStore


def __getattr__(name: str) -> object:
    """``SQLiteStore`` and ``DB_NAME`` on first use: they bring SQLAlchemy (some 25 MiB of a
    process's memory), which a defender reporting to a remote console never needs."""
    if name in ("SQLiteStore", "DB_NAME"):
        from garrison.store import sqlite  # noqa: PLC0415

        return getattr(sqlite, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DB_NAME",
    "BlockedContainer",
    "HostRecord",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "create_private_file",
    "open_private",
    "secure_data_dir",
]
