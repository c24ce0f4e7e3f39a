"""The store's one migration history, on SQLite and a real PostgreSQL: it makes exactly what
``schema`` says, takes up a SQLite store made before migrations (with what it holds), refuses a
store of a revision it does not know, and costs nothing (no Alembic) when there is nothing
to migrate."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from garrison.audit.query import AuditFilter
from garrison.errors import StoreError
from garrison.model import ModelCommand
from garrison.runtime.base import RestartPolicy
from garrison.store import DB_NAME, BlockedContainer, SQLiteStore, migrate, schema
from garrison.store.base import HostRecord
from garrison.store.postgres import PostgresStore, engine_url
from tests.store.test_store_contract import audit
from tests.store.test_store_users import session, token, user

VERSIONS = Path(migrate.__file__).with_name("migrations") / "versions"


def frozen_v1() -> ModuleType:
    """Migration 0001, whose tables are the store as Garrison kept it before migrations."""
    path = next(VERSIONS.glob("0001_*.py"))
    spec = importlib.util.spec_from_file_location("garrison_migration_0001", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


OLD_AUDITS = [
    audit(time=100.0, msg="Curl ran", command="curl http://x", ruleName="r1"),
    audit(time=101.0, msg="ÉCHEC", command="rm /tmp/x\udcff", hostname="node-2"),
    audit(time=102.0, msg="plain", attackType="unexpectedListeningPort", hostname="node-2"),
]


def make_old_store(path: Path, without: tuple[str, ...]) -> None:
    """A SQLite store as a Garrison before migrations made it: schema version 1, no revision,
    three audits; missing the tables and indexes named in ``without`` (a store made before
    they came)."""
    tables = frozen_v1().metadata
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        tables.create_all(conn)
        for name in without:
            kind = "TABLE" if name in tables.tables else "INDEX"
            conn.exec_driver_sql(f"DROP {kind} {name}")
        conn.exec_driver_sql("PRAGMA user_version=1")
        for n, old in enumerate(OLD_AUDITS):
            conn.execute(tables.tables["audits"].insert().values(_v1_row(n, old)))
    engine.dispose()


def _v1_row(n: int, old) -> dict[str, object]:
    doc = old.to_json() | {"time": old.time}
    return {
        "key": json.dumps([str(n)]),
        "time": old.time,
        "container_id": old.containerId,
        "container_name": old.containerName,
        "image_name": old.imageName,
        "image_id": old.imageId,
        "type": old.type,
        "effect": old.effect,
        "count": old.count,
        "doc": json.dumps(doc, sort_keys=True),
    }


def times(store, **query) -> list[int]:
    return [int(a.time) for a in store.list_audits(AuditFilter(**({"limit": 0} | query)))]


def test_the_revisions_are_alembics_reading_of_the_folder() -> None:
    scripts = ScriptDirectory.from_config(migrate.config())
    assert scripts.get_current_head() == migrate.HEAD
    oldest_first = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(oldest_first) == migrate.REVISIONS


@pytest.mark.parametrize(
    "without",
    [
        (),
        ("scan_reports",),
        ("sessions", "api_tokens", "users"),
        ("alert_outbox_audit", "alert_marks_audit"),
    ],
)
def test_a_store_from_before_migrations_is_taken_up_with_its_audits(
    tmp_path: Path, without: tuple[str, ...]
) -> None:
    make_old_store(tmp_path / DB_NAME, without)
    store = SQLiteStore.in_dir(tmp_path)
    try:
        assert times(store) == [102, 101, 100], "every audit kept"
        assert times(store, host="node-2") == [102, 101]
        assert times(store, rule="r1") == [100]
        assert times(store, attack_type="unexpectedListeningPort") == [102]
        assert times(store, search="échec") == [101]
        assert times(store, search="x\udcff") == [101]
        store.add_user(user("amy"))
        store.add_token(token("t1", "amy"))
        store.add_session(session("s1", "amy"))
        assert store.latest_scans() == []
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        revisions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        assert revisions == [(migrate.HEAD,)]
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert set(without) <= names
    assert_matches_schema(sa.create_engine(f"sqlite:///{tmp_path / DB_NAME}"))


def assert_matches_schema(engine: sa.Engine) -> None:
    """What the migrations made is what ``schema`` says: Alembic's autogenerate finds no
    difference (tables, columns, types, nullability, indexes)."""
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, schema.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_a_new_sqlite_store_is_the_schema(tmp_path: Path) -> None:
    SQLiteStore.in_dir(tmp_path).close()
    assert_matches_schema(sa.create_engine(f"sqlite:///{tmp_path / DB_NAME}"))


def test_a_new_postgresql_store_is_the_schema(postgres) -> None:
    url = postgres.url(postgres.create_database())
    PostgresStore(url).close()
    assert_matches_schema(sa.create_engine(engine_url(url)))


def _set_revision(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
    engine.dispose()


def test_a_sqlite_store_of_an_unknown_revision_is_refused(tmp_path: Path) -> None:
    store = SQLiteStore.in_dir(tmp_path)
    store.add_audits([audit()])
    store.close()
    _set_revision(sa.create_engine(f"sqlite:///{tmp_path / DB_NAME}"), "9999")
    with pytest.raises(StoreError, match=r"made by a newer Garrison \(revision 9999\)"):
        SQLiteStore.in_dir(tmp_path)
    _set_revision(sa.create_engine(f"sqlite:///{tmp_path / DB_NAME}"), migrate.HEAD)
    reopened = SQLiteStore.in_dir(tmp_path)
    assert len(reopened.list_audits()) == 1, "the refusal changed nothing"
    reopened.close()


def test_a_postgresql_store_of_an_unknown_revision_is_refused(postgres) -> None:
    url = postgres.url(postgres.create_database())
    PostgresStore(url).close()
    _set_revision(sa.create_engine(engine_url(url)), "9999")
    with pytest.raises(StoreError, match=r"made by a newer Garrison \(revision 9999\)"):
        PostgresStore(url)


def test_replicas_opening_a_new_database_together_migrate_it_once(postgres) -> None:
    url = postgres.url(postgres.create_database())
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            PostgresStore(url).close()
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = sa.create_engine(engine_url(url))
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    engine.dispose()
    assert rows == [(migrate.HEAD,)]


def test_a_store_at_the_newest_revision_opens_without_alembic(tmp_path: Path) -> None:
    SQLiteStore.in_dir(tmp_path).close()
    code = (
        "import sys; from garrison.store import SQLiteStore; "
        f"SQLiteStore.in_dir({str(tmp_path)!r}).close(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def _store_at_0002(engine: sa.Engine) -> None:
    """A store as revision 0002 left it, with a blocked container (its doc without a host, as
    Garrison then wrote it) and two model commands, one applied."""
    from alembic import command  # noqa: PLC0415

    with engine.begin() as conn:
        command.upgrade(migrate.config(conn), "0002")
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA user_version=2")
        doc = {k: v for k, v in OLD_BLOCK.to_json().items() if k != "host"}
        conn.execute(
            sa.text("INSERT INTO blocked_containers VALUES (:id, :doc, :time)"),
            {"id": OLD_BLOCK.container_id, "doc": json.dumps(doc), "time": OLD_BLOCK.time},
        )
        conn.execute(
            sa.text(
                "INSERT INTO model_commands (op, profile_id, seconds, time, done)"
                " VALUES ('relearn', 'p1', 0, 5, NULL), ('extend', 'p1', 60, 6, 7)"
            )
        )
    engine.dispose()


OLD_BLOCK = BlockedContainer("c1", "web", "nginx", RestartPolicy("always"), None, 10.0)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_at_0002_migrates_keeping_its_blocks_and_commands(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / DB_NAME}"
        _store_at_0002(sa.create_engine(url))
        store: SQLiteStore | PostgresStore = SQLiteStore.in_dir(tmp_path)
    else:
        cluster = request.getfixturevalue("postgres")
        url = cluster.url(cluster.create_database())
        _store_at_0002(sa.create_engine(engine_url(url)))
        store = PostgresStore(url)
        url = engine_url(url)
    try:
        assert store.list_blocked() == [OLD_BLOCK]
        assert store.list_blocked(host="") == [OLD_BLOCK], "a block from before: host ''"
        assert store.pending_model_commands() == [ModelCommand("relearn", "p1", 0.0, 5.0, 1)]
        store.enrol_host(HostRecord("web", "1", 0.0))
        assert [c.id for c in store.pending_model_commands("web")] == [1, 2]
    finally:
        store.close()
    assert_matches_schema(sa.create_engine(url))
