"""What SQLite and PostgreSQL spell differently, so that one set of statements serves both
stores (``SQLStore``): the upsert, the larger of two values, a field of a JSON document kept as
text, and a byte string's search in another.

Each is an SQL construct compiled per dialect (``sqlalchemy.ext.compiler``), except ``insert``,
whose ``ON CONFLICT`` clause SQLAlchemy builds per dialect: it asks the connection's dialect.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


def insert(conn: Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that takes ``on_conflict_do_update`` and ``on_conflict_do_nothing`` (both
    dialects spell them alike) for the database of ``conn``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class greatest(FunctionElement[Any]):
    """The larger of two values: ``max(a, b)`` in SQLite, ``greatest(a, b)`` elsewhere."""

    inherit_cache = True
    name = "greatest"


@compiles(greatest)
def _greatest(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"greatest({compiler.process(element.clauses, **kw)})"


@compiles(greatest, "sqlite")
def _greatest_sqlite(element: greatest, compiler: SQLCompiler, **kw: Any) -> str:
    return f"max({compiler.process(element.clauses, **kw)})"


class json_text(FunctionElement[str]):
    """``json_text(doc, "name")``: the top-level field ``name`` of the JSON text ``doc``, as
    text (NULL when missing). PostgreSQL reads the text as ``json``, not ``jsonb``: ``json``
    only checks syntax, so a lone surrogate escaped elsewhere in the document (a command
    line's non-UTF-8 byte) fails nothing."""

    type = sa.Text()
    inherit_cache = True
    name = "json_text"


@compiles(json_text)
def _json_text(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    doc, field = _two(element, compiler, **kw)
    return f"(CAST({doc} AS json) ->> {field})"


@compiles(json_text, "sqlite")
def _json_text_sqlite(element: json_text, compiler: SQLCompiler, **kw: Any) -> str:
    doc, field = _two(element, compiler, **kw)
    return f"CAST(json_extract({doc}, '$.' || {field}) AS TEXT)"


class contains_bytes(FunctionElement[bool]):
    """``contains_bytes(haystack, needle)``: whether the byte string ``needle`` occurs in
    ``haystack`` (both BLOB / bytea): literal bytes, no pattern characters, no collation."""

    type = sa.Boolean()
    inherit_cache = True
    name = "contains_bytes"


@compiles(contains_bytes)
def _contains_bytes(element: contains_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _two(element, compiler, **kw)
    return f"(position({needle} in {haystack}) > 0)"


@compiles(contains_bytes, "sqlite")
def _contains_bytes_sqlite(element: contains_bytes, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _two(element, compiler, **kw)
    return f"(instr({haystack}, {needle}) > 0)"


def _two(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> tuple[str, str]:
    first, second = element.clauses.clauses
    return compiler.process(first, **kw), compiler.process(second, **kw)
