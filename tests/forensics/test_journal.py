"""The journal on real files: a bounded ring, a container's slice in order, survival across a
new Journal on the same folder, and a full buffer that drops and counts rather than waits."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from garrison.forensics import journal as journal_module
from garrison.forensics.journal import SEGMENTS, Journal


def test_a_slice_holds_one_container_s_entries_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    for n in range(5):
        journal.record("a" * 64, "spawn", float(n), pid=n, command=f'echo "{n}"\ncontainerId')
        journal.record("b" * 64, "spawn", float(n), pid=100 + n)
    found = journal.slice("a" * 64)
    assert [e["pid"] for e in found] == [0, 1, 2, 3, 4]
    assert found[0] == {"time": 0.0, "containerId": "a" * 64, "kind": "spawn", "pid": 0,
                        "command": 'echo "0"\ncontainerId'}  # fmt: skip
    assert journal.slice("c" * 64) == []


def test_a_command_line_cannot_forge_another_container_s_entry(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    forged = '", "containerId": "' + "b" * 64 + '", "kind": "audit'
    journal.record("a" * 64, "spawn", 1.0, command=forged)
    assert journal.slice("b" * 64) == []
    assert journal.slice("a" * 64)[0]["command"] == forged


def test_the_ring_keeps_its_size_dropping_the_oldest_segment_first(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", max_bytes=SEGMENTS * 4096)
    for n in range(3000):  # about 90 bytes each: several times the ring
        journal.record("a" * 64, "spawn", float(n), pid=n)
        if n % 20 == 19:
            journal.flush()
    journal.flush()
    files = sorted((tmp_path / "j").glob("*.jsonl"))
    total = sum(p.stat().st_size for p in files)
    assert total <= journal.max_bytes + journal.segment_bytes  # the current one may overrun a batch
    pids = [e["pid"] for e in journal.slice("a" * 64)]
    assert (pids[-1], pids[0] > 0) == (2999, True), "the newest kept, the oldest gone"
    assert pids == sorted(pids)


def test_what_was_journaled_is_read_by_the_next_defender(tmp_path: Path) -> None:
    first = Journal(tmp_path / "j").start()
    first.record("a" * 64, "start", 1.0, name="web")
    first.stop()
    second = Journal(tmp_path / "j")
    second.record("a" * 64, "spawn", 2.0, pid=7)
    assert [e["kind"] for e in second.slice("a" * 64)] == ["start", "spawn"]


def test_files_are_owner_only(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.record("a" * 64, "start", 1.0)
    journal.flush()
    assert stat.S_IMODE(os.stat(tmp_path / "j").st_mode) == 0o700
    for path in (tmp_path / "j").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_full_buffer_drops_the_oldest_and_counts_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal_module, "BUFFER", 10)
    journal = Journal(tmp_path / "j")
    for n in range(15):
        journal.record("a" * 64, "spawn", float(n), pid=n)
    assert journal.dropped == 5
    assert [e["pid"] for e in journal.slice("a" * 64)] == list(range(5, 15))


def test_a_folder_that_cannot_be_written_counts_errors_and_drops(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j")
    journal.record("a" * 64, "spawn", 1.0)
    os.chmod(tmp_path / "j", 0o500)
    try:
        if os.geteuid() == 0:  # root writes anyway: make the segment name a directory instead
            os.chmod(tmp_path / "j", 0o700)
            (tmp_path / "j" / "000000001.jsonl").mkdir()
        journal.flush()
    finally:
        os.chmod(tmp_path / "j", 0o700)
    assert (journal.errors, journal.dropped, journal.written) == (1, 1, 0)


def test_a_zero_size_journal_keeps_nothing(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j", max_bytes=0)
    journal.record("a" * 64, "spawn", 1.0)
    journal.flush()
    assert journal.slice("a" * 64) == []
    assert list((tmp_path / "j").glob("*.jsonl")) == []
