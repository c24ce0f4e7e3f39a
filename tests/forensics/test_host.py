"""Forensics as the defender uses it, on real files with the fake runtime: a capture holds
what was journaled and audited, a container removed before its capture keeps what Garrison
took at its start, a stopping defender leaves no half bundle, and retention runs after each
capture and at start."""

from __future__ import annotations

import dataclasses
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from garrison.audit.record import Audit
from garrison.config import Settings
from garrison.forensics.capture import CaptureStopped
from garrison.forensics.host import HostForensics
from garrison.forensics.verify import verify
from garrison.runtime.fake import FakeRuntime
from garrison.sensors.events import FileEvent, ProcessEvent

CID = "c" * 64


def spawn(pid: int, path: str, ppid: int = 1) -> ProcessEvent:
    return ProcessEvent(CID, pid, ppid, path, (path, "-x"), 0, "root", "/bin/sh", 5.0)


def audit(msg: str = "/tmp/x launched") -> Audit:
    return Audit(6.0, "h", "processes", "driftBinary", "block", msg, containerId=CID)


def host_on(tmp_path: Path, runtime: FakeRuntime, **settings: object) -> HostForensics:
    found = [audit()]
    values = {"data_dir": tmp_path / "data", "hostname": "h", **settings}
    return HostForensics(Settings(**values), runtime, lambda cid, limit: found)  # type: ignore[arg-type]


def names(path: Path) -> list[str]:
    with tarfile.open(path) as bundle:
        return bundle.getnames()


def stopped_container(runtime: FakeRuntime, name: str = "web") -> None:
    runtime.run(CID, name=name)
    runtime.exit(CID)  # blocked: stopped (its processes were read before the kill)


def test_a_capture_holds_what_was_journaled_and_audited(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    host = host_on(tmp_path, runtime)
    host.saw(spawn(10, "/bin/sh"))
    host.saw(spawn(10, "/bin/sh"))  # judged at its exec, then reported again: one entry
    host.saw(FileEvent(CID, "/tmp/x", "create", 10, "/bin/sh", 5.5))
    host.audited(audit())
    info = host.capture(host.request(runtime.inspect(CID), "cccccccccccc-1", audit()))
    assert verify(info.path).ok
    assert names(info.path) == ["inspect.json", "audits.json", "journal.jsonl", "diff.json",
                                "logs.txt", "filesystem.tar", "manifest.json"]  # fmt: skip
    assert info.missing == ("process-tree.json",)  # not running: nothing to read
    assert info.subject["reason"] == "/tmp/x launched"
    with tarfile.open(info.path) as bundle:
        journal = bundle.extractfile("journal.jsonl")
        assert journal is not None
        kinds = [line.split(b'"kind": "')[1].split(b'"')[0] for line in journal.read().splitlines()]
    assert kinds == [b"spawn", b"write", b"audit"]
    assert host.counters()["captured"] == 1


def test_a_container_removed_before_its_capture_keeps_the_inspect_of_its_start(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    info = dataclasses.replace(runtime.inspect(CID), document={"Id": CID, "AutoRemove": True})
    runtime.remove(CID)
    host = host_on(tmp_path, runtime)
    bundle = host.capture(host.request(info, "cccccccccccc-2", audit()))
    assert set(bundle.missing) == {"process-tree.json", "diff.json", "logs.txt", "filesystem.tar"}
    assert "inspect-note.json" in names(bundle.path)
    assert verify(bundle.path).manifest is not None
    why = {m.name: m.why for m in verify(bundle.path).manifest.missing}  # type: ignore[union-attr]
    assert why["filesystem.tar"] == "the container was removed before it could be captured"


def test_a_stopping_defender_leaves_no_half_bundle_and_lists_none(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    host = host_on(tmp_path, runtime)
    host.capturer.stop()
    with pytest.raises(CaptureStopped):
        host.capture(host.request(runtime.inspect(CID), "cccccccccccc-3", audit()))
    assert host.library.list() == []
    assert list((tmp_path / "data" / "forensics" / "bundles").glob("*.partial")) == []


def test_retention_runs_after_a_capture_and_keeps_the_pinned(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    unlimited = host_on(tmp_path, runtime)
    kept = unlimited.capture(unlimited.request(runtime.inspect(CID), "cccccccccccc-4", audit()))
    unlimited.library.pin(kept.id, True)
    host = host_on(tmp_path, runtime, forensics_max_bytes=1)  # room for none
    new = host.capture(host.request(runtime.inspect(CID), "cccccccccccc-5", audit()))
    assert [b.id for b in host.library.list()] == ["cccccccccccc-4"], "only the pinned one"
    assert not new.path.exists()


def test_at_start_a_dead_capture_s_partial_goes_and_a_finished_unindexed_bundle_is_listed(
    tmp_path: Path,
) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    first = host_on(tmp_path, runtime)
    request = first.request(runtime.inspect(CID), "cccccccccccc-7", audit())
    first.capturer.write(request, first.library.new_path("cccccccccccc-7"))  # killed before add
    shelf = tmp_path / "data" / "forensics" / "bundles"
    (shelf / "cccccccccccc-8.tar.gz.partial").write_bytes(b"half")
    second = host_on(tmp_path, runtime)
    second.start()
    try:
        assert [b.id for b in second.library.list()] == ["cccccccccccc-7"]
        assert list(shelf.glob("*.partial")) == []
    finally:
        second.stop()


def test_a_capture_runs_at_the_lowest_priority_and_gives_its_thread_back(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    host = host_on(tmp_path, runtime)
    thread = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, thread)
    seen: list[int] = []
    original = runtime.diff

    def diff(container_id: str) -> list[dict[str, object]]:
        seen.append(os.sched_getscheduler(threading.get_native_id()))
        return original(container_id)

    runtime.diff = diff  # type: ignore[method-assign]
    host.capture(host.request(runtime.inspect(CID), "cccccccccccc-9", audit()))
    assert seen == [os.SCHED_IDLE]
    assert os.sched_getscheduler(thread) == os.SCHED_OTHER
    assert os.getpriority(os.PRIO_PROCESS, thread) == before


def test_a_paced_export_is_read_slowly_and_a_stop_ends_the_pause(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    stopped_container(runtime)
    host = host_on(tmp_path, runtime, forensics_export_rate=1e-6)  # a byte a second
    outcome: list[BaseException] = []

    def capture() -> None:
        try:
            host.capture(host.request(runtime.inspect(CID), "cccccccccccc-a", audit()))
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=capture)
    worker.start()
    worker.join(0.5)
    assert worker.is_alive(), "1 KiB at a byte a second: still reading"
    host.capturer.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert [type(e) for e in outcome] == [CaptureStopped]
    assert host.library.list() == []


def test_the_forensics_folder_itself_is_owner_only(tmp_path: Path) -> None:
    host_on(tmp_path, FakeRuntime())
    assert stat.S_IMODE((tmp_path / "data" / "forensics").stat().st_mode) == 0o700
