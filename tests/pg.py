"""A private PostgreSQL cluster for the tests: Debian's server (package ``postgresql``), made
with ``initdb`` in a folder of its own and started with ``pg_ctl``, listening on a unix socket
only (no TCP port), stopped by the session at its end.

As root, the server runs as the ``postgres`` user (PostgreSQL refuses root); clients connect
as the cluster's superuser ``garrison`` through the socket, trusted. ``fsync`` is off unless
asked: the unit tests' databases need no crash safety, the restart tests ask for it.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

SUPERUSER = "garrison"
PORT = 5432  # names the socket file in the cluster's own folder; no TCP listener
TEMPLATE = "garrison_template"


def bin_dir() -> Path:
    """The newest installed server's programs; fails the test when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    if not found:
        pytest.fail("no PostgreSQL server: install Debian's postgresql package (scripts/bootstrap)")
    return Path(found[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name.split(".")[0])


@dataclass
class Cluster:
    root: Path
    fsync: bool = False
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def init(self) -> None:
        self.socket_dir.mkdir()
        _chown_tree(self.root)
        args = ["-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8"]
        self._run("initdb", *args, "--locale=C.UTF-8", "--no-sync")

    def start(self) -> None:
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {PORT}"
        if not self.fsync:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        status = self._run("pg_ctl", "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A connection to the ``postgres`` database in autocommit (CREATE DATABASE)."""
        return psycopg.connect(self.url("postgres"), autocommit=True)

    def create_database(self, template: str = "template0") -> str:
        """A new database, copied from ``template``; its name."""
        return self.create_database_named(f"t{os.getpid()}_{next(self._names)}", template)

    def create_database_named(self, name: str, template: str = "template0") -> str:
        with contextlib.closing(self.admin()) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.closing(self.admin()) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(bin_dir() / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and done.returncode:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"{program} failed: {done.stderr.strip()}\n{tail}")
        return done


def _chown_tree(root: Path) -> None:
    if os.geteuid() != 0:
        return
    user = pwd.getpwnam("postgres")
    for path in [root, *root.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


@contextlib.contextmanager
def private_cluster(fsync: bool = False) -> Iterator[Cluster]:
    """A cluster started in a new folder under /tmp (pytest's own is root's alone, and the
    server runs as postgres); stopped and removed at the end, even when the test fails."""
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="garrison-pg-")), fsync=fsync)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.data.exists() and cluster.running():
            cluster.stop("immediate")
        shutil.rmtree(cluster.root, ignore_errors=True)
