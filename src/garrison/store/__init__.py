"""Persistence behind an interface (SQLite now, PostgreSQL later)."""
