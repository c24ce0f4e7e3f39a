"""The write barrier's own logic: requests to the mount helper in order, the guard released
only when every path is read-only, and a refused write named and judged only when one of
Garrison's read-only paths refused it. The helper is given as a function (the real one runs
against the engine in tests/defender/test_enforcement_readonly.py)."""

from __future__ import annotations

import os
import struct
import threading

from garrison.sensors.bpf.proc_events import _EVENT, DEPTH, EVENT_REFUSED, NAME_SLOT, parse_event
from garrison.sensors.events import FileEvent, RefusedWrite, SensorCounters, Verdict
from garrison.sensors.procfs import ProcFS
from garrison.sensors.write_barrier import AT_FDCWD, O_CREAT, MountError, WriteBarrier
from tests.support import WAIT

PID = os.getpid()


class Recorder:
    def __init__(self, report: dict[str, object]) -> None:
        self.report = report
        self.calls: list[tuple[int, frozenset[str]]] = []
        self.judged: list[FileEvent] = []
        self.settled: list[tuple[str, bool]] = []
        self.done = threading.Event()

    def helper(self, pid: int, paths: frozenset[str]) -> dict[str, object]:
        self.calls.append((pid, paths))
        return self.report

    def judge(self, event: FileEvent) -> Verdict:
        self.judged.append(event)
        return Verdict.DENY

    def on_settled(self, container_id: str, ok: bool) -> None:
        self.settled.append((container_id, ok))
        self.done.set()


def barrier(report: dict[str, object]) -> tuple[WriteBarrier, Recorder]:
    rec = Recorder(report)
    wb = WriteBarrier(rec.judge, SensorCounters(), lambda c, t: (t, ""), ProcFS(), rec.helper)
    wb.refusals = lambda container_id, on: None
    wb.settled = rec.on_settled
    wb.start()
    return wb, rec


def refused(path: str, **kw: object) -> RefusedWrite:
    fields: dict[str, object] = {
        "container_id": "c1", "pid": PID, "tgid": PID, "path": path, "dfd": AT_FDCWD,
        "op": "open", "flags": O_CREAT | os.O_WRONLY, "error": 30, "time": 0.0,
        "exe": "/usr/bin/dash", "cwd": None,
    }  # fmt: skip
    return RefusedWrite(**(fields | kw))  # type: ignore[arg-type]


def test_mounted_paths_release_the_guard_and_refusals_under_them_are_judged() -> None:
    wb, rec = barrier({"mounted": {"/etc": "/etc"}, "kept": {}, "removed": [], "failed": {}})
    wb.set("c1", PID, frozenset({"/etc"}))
    assert rec.done.wait(WAIT)
    wb.stop()
    assert rec.calls == [(PID, frozenset({"/etc"}))]
    assert rec.settled == [("c1", True)]
    assert wb.read_only("c1") == frozenset({"/etc"})

    wb.on_refused(refused("/etc/../etc/new-file"))
    wb.on_refused(refused("x", cwd="/etc/ssl"))
    wb.on_refused(refused("/etc/passwd", op="delete", flags=0))
    wb.on_refused(refused("/var/x"))  # a --read-only container's own refusal: not ours
    assert [(e.path, e.kind, e.process_path) for e in rec.judged] == [
        ("/etc/new-file", "create", "/usr/bin/dash"),
        ("/etc/ssl/x", "create", "/usr/bin/dash"),
        ("/etc/passwd", "delete", "/usr/bin/dash"),
    ]
    assert wb.counters.extra["refused_elsewhere"] == 1


def test_a_write_refused_before_the_helper_has_reported_is_judged() -> None:
    """The mount refuses as soon as it is made, before the helper has exited and said so."""
    wb, rec = barrier({"mounted": {"/etc": "/etc"}})
    mounted = rec.helper

    def helper(pid: int, paths: frozenset[str]) -> dict[str, object]:
        wb.on_refused(refused("/etc/early"))  # between the mount and the report
        return mounted(pid, paths)

    wb.helper = helper
    wb.set("c1", PID, frozenset({"/etc"}))
    assert rec.done.wait(WAIT)
    wb.stop()
    assert [e.path for e in rec.judged] == ["/etc/early"]


def test_a_helper_that_failed_leaves_no_path_published() -> None:
    wb, rec = barrier({})

    def helper(pid: int, paths: frozenset[str]) -> dict[str, object]:
        raise MountError("the container's mount namespace is gone")

    wb.helper = helper
    wb.set("c1", PID, frozenset({"/etc"}))
    assert rec.done.wait(WAIT)
    wb.stop()
    assert rec.settled == [("c1", False)]
    assert wb.read_only("c1") == frozenset()
    wb.on_refused(refused("/etc/x"))  # e.g. a --read-only container's own EROFS
    assert rec.judged == []


def test_a_relative_path_without_the_kernels_cwd_is_joined_to_the_callers_proc_cwd() -> None:
    wb, rec = barrier({"mounted": {"/": "/"}})
    wb._publish("c1", frozenset({os.getcwd()}))
    wb.on_refused(refused("some-file", cwd=None, flags=os.O_WRONLY))
    assert [(e.path, e.kind) for e in rec.judged] == [
        (os.path.join(os.getcwd(), "some-file"), "write")
    ]
    wb.stop()


def test_a_path_that_failed_keeps_the_guard() -> None:
    report = {"mounted": {"/etc": "/etc"}, "failed": {"/srv": "No such file or directory"}}
    wb, rec = barrier(report)
    wb.set("c1", PID, frozenset({"/etc", "/srv"}))
    assert rec.done.wait(WAIT)
    wb.stop()
    assert rec.settled == [("c1", False)]
    assert wb.read_only("c1") == frozenset({"/etc"})  # what did mount still refuses


def test_removing_what_was_never_asked_for_runs_no_helper() -> None:
    wb, rec = barrier({})
    wb.set("c9", PID, frozenset())
    wb.stop()
    assert rec.calls == []


def test_a_refused_write_record_is_parsed_with_the_callers_paths() -> None:
    names = bytearray(NAME_SLOT * DEPTH * 2)
    for i, name in enumerate((b"dash", b"bin", b"usr")):
        names[i * NAME_SLOT : i * NAME_SLOT + len(name)] = name
    names[NAME_SLOT * DEPTH : NAME_SLOT * DEPTH + 3] = b"etc"
    dfd = struct.unpack("=I", struct.pack("=i", AT_FDCWD))[0]
    head = _EVENT.pack(
        EVENT_REFUSED, 41, 40, 0, 7, 0, 0, dfd, -30, 0o1101, 0, 0, len(names), 0, 1,
        0, 0, 0, b"", b"rel\0",
    )  # fmt: skip
    event = parse_event(head + bytes(names), {7: "c7"})
    assert isinstance(event, RefusedWrite)
    assert (event.container_id, event.pid, event.tgid, event.path) == ("c7", 41, 40, "rel")
    assert (event.dfd, event.op, event.flags, event.error) == (AT_FDCWD, "open", 0o1101, 30)
    assert (event.exe, event.cwd) == ("/usr/bin/dash", "/etc")


def test_paths_in_place_are_known_until_a_new_request_or_the_container_goes() -> None:
    wb, rec = barrier({"mounted": {"/etc": "/etc"}})
    wb.set("c1", PID, frozenset({"/etc"}))
    assert rec.done.wait(WAIT)
    assert wb.in_place("c1") == frozenset({"/etc"})
    wb.set("c1", PID, frozenset({"/etc", "/srv"}))  # the helper reports /srv missing
    assert wb.in_place("c1") is None
    wb.stop()
    assert wb.in_place("c1") is None
    wb.forget("c1")
    assert wb.read_only("c1") == frozenset()
