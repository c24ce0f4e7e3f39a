"""What the benchmark scripts share (they run as scripts: this folder is on their path)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from garrison.devengine import EngineConfig, PrivateEngine, ensure_packages


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat, man 5 proc), and
    (``children``) of its living children: ``garrison run`` is the watchdog, and the defender
    its child."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if not children:
        return own
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in kids if child.isdigit())


def write_mode_ratios(
    path: Path | None, results: list[dict[str, tuple[float, int]]], n: int, modes: Sequence[str]
) -> None:
    """For a storm timed per mode in interleaved rounds (seconds, events counted): per mode,
    the median of its per-round ratios to "none", the ratios, and the fewest events counted
    in a round, as JSON in ``path`` (when given)."""
    if path is None:
        return
    doc: dict[str, Any] = {"n": n, "rounds": len(results), "modes": {}}
    for mode in modes:
        ratios = [r[mode][0] / r["none"][0] for r in results]
        counted = min(r[mode][1] for r in results)
        doc["modes"][mode] = {
            "ratio": statistics.median(ratios),
            "ratios": ratios,
            "counted": counted,
        }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def started_by(status: dict[str, Any], pid: int) -> bool:
    """Is this status the report of the ``garrison run`` started as ``pid`` (the watchdog,
    whose child is the defender that reports; or the defender itself, --no-watchdog)?"""
    watchdog = status.get("watchdog") or {}
    return pid in (status.get("pid"), watchdog.get("supervisorPid"))


def defender_pid(status: dict[str, Any]) -> int:
    """The defender's own pid (under the watchdog, not the pid ``garrison run`` started as)."""
    return int(status.get("pid") or 0)


def remove_state(state_dir: Path) -> None:
    """Remove a scratch engine dir, unless something is still mounted under it."""
    if f" {state_dir}/" not in Path("/proc/self/mountinfo").read_text():
        shutil.rmtree(state_dir, ignore_errors=True)


@contextlib.contextmanager
def bench_engine(engine_dir: Path | None, prefix: str) -> Iterator[tuple[PrivateEngine, Path]]:
    """A private engine (the one running in ``engine_dir`` is reused and left running) and a
    scratch folder in /var/tmp. Both go afterwards; the folder stays, and is named, when the
    run fails (it holds the defenders' logs)."""
    state_dir = engine_dir or Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/var/tmp"))
    engine = PrivateEngine(EngineConfig(state_dir=state_dir))
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}w-", dir="/var/tmp"))
    try:
        engine.start()
        yield engine, work
    except BaseException:
        print(f"the defenders' logs are kept in {work}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if not engine.reused:
            engine.stop()
        if engine_dir is None:
            remove_state(state_dir)


def parts_option(choices: Collection[str]) -> Callable[[str], frozenset[str]]:
    """The parser of an ``--only a,b`` option whose parts are among ``choices``."""

    def parse(text: str) -> frozenset[str]:
        chosen = frozenset(p.strip() for p in text.split(",") if p.strip())
        if not chosen or chosen - set(choices):
            raise argparse.ArgumentTypeError(f"choose among {','.join(choices)}")
        return chosen

    return parse


RunAll = Callable[[PrivateEngine, Path, argparse.Namespace], dict[str, Any]]


def run_benchmark(
    args: argparse.Namespace, prefix: str, run_all: RunAll, report: Callable[[dict[str, Any]], None]
) -> None:
    """Run on a private engine (``args.engine_dir`` or a new one), print the report, and
    write the figures to ``args.json_out`` when given."""
    ensure_packages()
    with bench_engine(args.engine_dir, prefix) as (engine, work):
        doc = run_all(engine, work, args)
    report(doc)
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")


# -- a private PostgreSQL cluster (the few lines of tests/pg.py, which benchmarks do not import) --

PG_SUPERUSER = "garrison"
PG_PORT = 5432  # names the socket file in the cluster's folder; no TCP listener


@dataclasses.dataclass
class PostgresCluster:
    """A cluster made with ``initdb`` in ``root``, on a unix socket only, run as the
    ``postgres`` user when we are root (PostgreSQL refuses root). ``fsync`` stays on: what a
    console's store costs includes making each commit durable."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        socket_dir = self.root / "socket"
        return f"postgresql://{PG_SUPERUSER}@/{database}?host={socket_dir}&port={PG_PORT}"

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def pg(self, program: str, *args: str) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise SystemExit("no PostgreSQL server: install Debian's postgresql package")
        command = [str(Path(found[-1]).parent / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def private_postgres(prefix: str) -> Iterator[PostgresCluster]:
    """A cluster started in a new folder under /tmp; stopped with ``pg_ctl`` and removed at
    the end, even when the run fails."""
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/tmp")))
    (cluster.root / "socket").mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in [cluster.root, *cluster.root.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)
    started = False
    try:
        cluster.pg("initdb", "-D", str(cluster.data), "-U", PG_SUPERUSER, "--auth=trust",
                   "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        options = f"-c listen_addresses='' -k {cluster.root / 'socket'} -p {PG_PORT}"
        log = str(cluster.root / "server.log")
        cluster.pg("pg_ctl", "-D", str(cluster.data), "-l", log, "-o", options, "-w", "start")
        started = True
        yield cluster
    finally:
        if started:
            cluster.pg("pg_ctl", "-D", str(cluster.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(cluster.root, ignore_errors=True)
