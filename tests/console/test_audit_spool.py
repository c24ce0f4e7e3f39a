"""The audit spool: no audit is lost to a SIGKILL from the moment it is made, none is stored
twice when replayed, and a full disk delays audits (bounded, counted) without losing the ones
kept. Real processes killed for real, a real SQLite store, a real full file system (tmpfs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.console import Console, InProcessLink
from garrison.console.spool import SPOOL_NAME, AuditSpool
from garrison.store import SQLiteStore
from tests.support import fill, grow

MAKER = textwrap.dedent(
    """
    import sys, time
    from garrison.audit.record import Audit
    from garrison.console import Console

    link = Console.open(sys.argv[1]).link(flush_interval=float(sys.argv[2]))
    for i in range(1000):
        link.report_audit(Audit(time.time(), "h", "processes", "unexpectedProcess", "alert",
                                f"/bin/p{i} launched"))
        print(i, flush=True)
    time.sleep(600)
    """
)


def audit(n: int) -> Audit:
    return Audit(1.0, "h", "processes", "unexpectedProcess", "alert", f"/bin/p{n} launched")


def stored(data_dir: Path) -> list[Audit]:
    with Console.open(data_dir) as console:
        return console.list_audits(AuditFilter(limit=0))


@pytest.mark.parametrize("flush_interval", [60.0, 0.05], ids=["none-stored-yet", "some-stored"])
def test_every_audit_made_before_a_sigkill_is_stored_once_after_restart(
    tmp_path: Path, flush_interval: float
) -> None:
    argv = [sys.executable, "-c", MAKER, str(tmp_path), str(flush_interval)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as maker:
        try:
            assert maker.stdout is not None
            made = [maker.stdout.readline() for _ in range(500)]
            maker.send_signal(signal.SIGKILL)
            made += maker.stdout.readlines()  # what it printed before it died
        finally:
            maker.kill()
    made_paths = {f"/bin/p{int(line)} launched" for line in made if line.strip()}
    assert len(made_paths) >= 500

    with Console.open(tmp_path) as console:
        link = console.link()  # replays the spool
        replayed = link.stats.replayed_audits
        link.close()
    audits = stored(tmp_path)
    assert {a.msg for a in audits} >= made_paths
    assert all(a.count == 1 for a in audits)
    if flush_interval == 60.0:
        assert replayed >= 500
    with Console.open(tmp_path) as console:  # a second start finds nothing more to store
        link = console.link()
        assert link.stats.replayed_audits == 0
        link.close()
    assert [a.count for a in stored(tmp_path)] == [1] * len(audits)
    assert (tmp_path / SPOOL_NAME).stat().st_size == 0


def test_a_line_cut_by_a_crash_is_skipped_and_the_rest_replayed(tmp_path: Path) -> None:
    spool = AuditSpool.in_dir(tmp_path)
    spool.append(1, audit(1))
    spool.append(2, audit(2))
    spool.close()
    with (tmp_path / SPOOL_NAME).open("ab") as f:
        f.write(b'{"seq":3,"audit":{"time":1.0,"host')  # the write a SIGKILL cut short
    # Appended after the torn line, a new audit reads back on its own line.
    after_crash = AuditSpool.in_dir(tmp_path)
    after_crash.append(4, audit(4))
    assert [a.msg for _, a in after_crash.read(after=0)] == [audit(n).msg for n in (1, 2, 4)]
    after_crash.close()
    # A link started on that spool stores what the torn line did not swallow, once.
    store = SQLiteStore.in_dir(tmp_path)
    link = InProcessLink(store, flush_interval=60, spool=AuditSpool.in_dir(tmp_path))
    assert link.stats.replayed_audits == 3
    link.report_audit(audit(5))
    link.close()
    assert sorted(a.msg for a in store.list_audits()) == [audit(n).msg for n in (1, 2, 4, 5)]
    store.close()


def test_a_full_disk_delays_audits_counted_and_stores_them_when_space_returns(
    small_disk: Path,
) -> None:
    store = SQLiteStore.in_dir(small_disk)
    link = InProcessLink(store, flush_interval=0.05, spool=AuditSpool.in_dir(small_disk))
    link.max_pending = 7_000
    filler = fill(small_disk)
    try:
        for n in range(8_000):
            link.report_audit(audit(n))
        assert not link.flush(timeout=1.0)
        counters = link.counters()
        assert counters["pendingAudits"] == 7_000
        assert counters["droppedAudits"] == 1_000
        assert counters["writeErrors"] >= 1
        assert counters["spoolErrors"] >= 1
    finally:
        filler.unlink()
        # 7,000 audits take more than the whole 2 MB: space returns as the volume grows.
        grow(small_disk)
    assert link.flush(timeout=60)
    link.close()
    assert len(store.list_audits(AuditFilter(limit=0))) == 7_000
    assert link.counters()["pendingAudits"] == 0
    store.close()


def test_the_spool_file_is_private(tmp_path: Path) -> None:
    AuditSpool.in_dir(tmp_path).close()
    assert os.stat(tmp_path / SPOOL_NAME).st_mode & 0o777 == 0o600
