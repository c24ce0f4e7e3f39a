"""The SQLite store on a real file: it survives reopening, other processes and a SIGKILL."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import StoreError
from garrison.model import ModelCommand
from garrison.store import DB_NAME, SQLiteStore


def audit(n: int, time: float = 1.0) -> Audit:
    return Audit(time, "h", "processes", "unexpectedProcess", "alert", f"/bin/p{n} launched")


def test_reopening_keeps_everything(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    store.add_audits([audit(1), audit(1)])
    store.save_models([{"profileId": "p1", "processes": []}])
    store.set_policy("runtime", {"rules": []})
    store.set_status({"up": True})
    store.add_model_command(ModelCommand("relearn", "p1"))
    store.close()

    again = SQLiteStore.in_dir(tmp_path)
    assert [(a.msg, a.count) for a in again.list_audits()] == [("/bin/p1 launched", 2)]
    assert again.load_models() == [{"profileId": "p1", "processes": []}]
    assert again.get_policy("runtime") == {"rules": []}
    assert again.get_status() == {"up": True}
    assert [c.op for c in again.pending_model_commands()] == ["relearn"]
    again.close()


def test_the_file_is_in_wal_mode(tmp_path):
    SQLiteStore.in_dir(tmp_path).close()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / DB_NAME
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=str(path)):
        SQLiteStore(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_a_store_from_a_newer_garrison_is_refused(tmp_path):
    path = tmp_path / DB_NAME
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer Garrison"):
        SQLiteStore(path)


def test_a_data_directory_that_cannot_be_made_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match="cannot create data directory"):
        SQLiteStore.in_dir(tmp_path / "file" / "data")


def test_concurrent_writers_in_threads_lose_no_count(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)

    def report() -> None:
        for _ in range(50):
            store.add_audits([audit(1)])

    threads = [threading.Thread(target=report) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.count for a in store.list_audits()] == [200]
    store.close()


def test_another_process_sees_and_adds_to_the_same_store(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    store.save_models([{"profileId": "p1"}])
    code = (
        "import sys\n"
        "from garrison.store import SQLiteStore\n"
        "from garrison.model import ModelCommand\n"
        "s = SQLiteStore.in_dir(sys.argv[1])\n"
        "assert [d['profileId'] for d in s.load_models()] == ['p1']\n"
        "s.add_model_command(ModelCommand('extend', 'p1', seconds=30))\n"
        "s.close()\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=60)
    assert [(c.op, c.seconds) for c in store.pending_model_commands()] == [("extend", 30.0)]
    store.close()


WRITER = """
import sys
from garrison.audit.record import Audit
from garrison.store import SQLiteStore
store = SQLiteStore.in_dir(sys.argv[1])
n = 0
while True:
    n += 1
    store.add_audits([Audit(float(n), "h", "processes", "x", "alert", f"m{n % 50}")])
    print(n, flush=True)
"""


def test_a_sigkilled_writer_loses_nothing_it_had_stored(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        acknowledged = 0
        while acknowledged < 300:
            acknowledged = int(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    store = SQLiteStore.in_dir(tmp_path)
    total = sum(a.count for a in store.list_audits(AuditFilter(limit=0)))
    assert total >= acknowledged
    store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_NAME)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """A defender starting and a CLI command may create the schema at the same moment."""
    code = (
        "import sys; from garrison.store.sqlite import SQLiteStore; "
        "SQLiteStore.in_dir(sys.argv[1]).close()"
    )
    for round_ in range(8):
        folder = tmp_path / f"store-{round_}"
        folder.mkdir()
        procs = [
            subprocess.Popen([sys.executable, "-c", code, str(folder)], stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        errors = [p.communicate()[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors


CLOSE_IN_CHILD = """
import sys
from garrison.store import SQLiteStore
store = SQLiteStore.in_dir(sys.argv[1])
store.list_audits()
store.close()  # the last connection, as far as SQLite can tell: it checkpoints, drops the WAL
"""


def test_a_second_store_on_the_same_file_in_one_process_keeps_the_first_ones_locks(
    tmp_path: Path,
) -> None:
    """SQLite's locks on a file are the process's (fcntl), and closing any descriptor of the
    file drops them all: opening the store a second time must not open and close the file
    under the first, or another process takes itself for the last user and truncates the
    shared memory the first one still reads (a "disk I/O error")."""
    first = SQLiteStore.in_dir(tmp_path)
    first.add_audits([audit(1)])  # a pooled connection holds its shared lock from here
    second = SQLiteStore.in_dir(tmp_path)
    try:
        subprocess.run([sys.executable, "-c", CLOSE_IN_CHILD, str(tmp_path)], check=True)
        assert (tmp_path / f"{DB_NAME}-wal").exists()  # the child saw it was not the last
        first.add_audits([audit(2)])
        assert {a.msg for a in second.list_audits()} == {"/bin/p1 launched", "/bin/p2 launched"}
    finally:
        second.close()
        first.close()


def test_a_closed_store_refuses_reads_and_writes_and_opens_no_connection(tmp_path):
    store = SQLiteStore.in_dir(tmp_path)
    store.add_audits([audit(1)])
    store.close()
    # SQLAlchemy would make a new pool for a call after dispose(), and nothing would close it.
    with pytest.raises(StoreError, match="the store is closed"):
        store.list_audits(AuditFilter())
    with pytest.raises(StoreError, match="the store is closed"):
        store.add_audits([audit(2)])
    assert store._engine.pool.checkedin() == 0  # the new pool: what leaked before
