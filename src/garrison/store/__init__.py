"""Persistence behind an interface: ``Store`` (the seam), ``SQLiteStore`` (now; PostgreSQL
later) and ``MemoryStore`` (the fake for tests of other parts)."""

from __future__ import annotations

from garrison.store.base import BlockedContainer, Store
from garrison.store.memory import MemoryStore
from garrison.store.sqlite import DB_NAME, SQLiteStore

__all__ = ["DB_NAME", "BlockedContainer", "MemoryStore", "SQLiteStore", "Store"]
