"""FileSensor against the real engine: writes and creations, with container paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from garrison.errors import SensorError
from garrison.sensors.events import FileEvent, Verdict
from garrison.sensors.file_sensor import Coalescer, FileSensor
from tests.support import WAIT, became_true, rootfs_info

DEBIAN = "garrison-test/debian:12"


def wait_for(predicate: Callable[[], bool]) -> bool:
    return became_true(predicate, WAIT)


def test_repeats_within_the_window_are_coalesced():
    coalescer = Coalescer(window=10.0, size=2)
    assert coalescer.is_new(("c", "/tmp/x", 1), now=100.0)
    assert not coalescer.is_new(("c", "/tmp/x", 1), now=105.0)
    assert coalescer.is_new(("c", "/tmp/x", 2), now=105.0)  # another writer
    assert coalescer.is_new(("c", "/tmp/x", 1), now=120.0)  # the window has passed
    coalescer.is_new(("c", "/a", 1), now=121.0)
    coalescer.is_new(("c", "/b", 1), now=121.0)
    assert coalescer.is_new(("c", "/tmp/x", 1), now=122.0)  # evicted: size 2


@pytest.fixture
def recorded() -> Iterator[tuple[FileSensor, list[FileEvent]]]:
    events: list[FileEvent] = []
    sensor = FileSensor(events.append)
    sensor.start()
    try:
        yield sensor, events
    finally:
        sensor.stop()


def paths(events: list[FileEvent]) -> dict[str, FileEvent]:
    return {e.path: e for e in events}


@pytest.mark.engine
def test_writes_and_new_directories_are_recorded_with_container_paths(recorded, run_container):
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    script = "echo x > /tmp/x && mkdir -p /data/new && echo y > /data/new/f && echo z >> /etc/issue"
    script += "; sleep 2; true"  # bash lives on while its writes are read (the writer's exe)
    assert deb.exec_run(["bash", "-c", script]).exit_code == 0
    assert wait_for(lambda: {"/tmp/x", "/data/new/f", "/etc/issue"} <= paths(events).keys())
    seen = paths(events)
    assert seen["/tmp/x"].kind == "create"
    assert seen["/data/new/f"].kind == "create"
    assert seen["/etc/issue"].kind == "write"  # an image file, copied up by overlayfs
    assert seen["/tmp/x"].process_path == "/usr/bin/bash"
    assert all(e.container_id == deb.id for e in events)
    assert seen["/tmp/x"].pid > 0


@pytest.mark.engine
def test_repeated_writes_by_one_process_are_one_event(recorded, run_container):
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    deb.exec_run(
        ["bash", "-c", "for i in $(seq 1 50); do echo $i >> /tmp/log; done; echo > /tmp/end"]
    )
    assert wait_for(lambda: "/tmp/end" in paths(events))
    assert len([e for e in events if e.path == "/tmp/log"]) == 1
    # The kernel merges some repeats while queued; ours coalesces the rest: one event either way.


@pytest.mark.engine
def test_a_file_written_in_a_loop_raises_few_kernel_events_and_is_reported_again_later(
    recorded, run_container
):
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    loop = "for i in $(seq 1 2000); do echo $i > /tmp/counter; done; echo > /tmp/end"
    assert deb.exec_run(["bash", "-c", loop]).exit_code == 0
    assert wait_for(lambda: "/tmp/end" in paths(events))
    # Each write used to raise up to two events (modify, close-write), read and coalesced in
    # Python; the inode's ignore mark stops them in the kernel after the first one read.
    assert sensor.counters.extra["write_ignored"] >= 1
    assert sensor.counters.extra.get("coalesced", 0) < 100, sensor.counters.extra
    # Another process writing the file later is reported: the marks are flushed each second
    # (a new writer each try, until one comes after a flush).
    writers = lambda: {e.pid for e in events if e.path == "/tmp/counter"}  # noqa: E731
    again = lambda: deb.exec_run(["sh", "-c", "echo again > /tmp/counter; sleep 0.2"])  # noqa: E731
    assert became_true(lambda: again().exit_code == 0 and len(writers()) >= 2, 30.0, step=0.3)


@pytest.mark.engine
def test_a_container_exiting_while_it_writes_is_harmless(recorded, run_container):
    sensor, events = recorded
    writer = run_container(DEBIAN, ["bash", "-c", "while true; do echo x >> /tmp/y; done"])
    sensor.watch(rootfs_info(writer))
    assert wait_for(lambda: "/tmp/y" in paths(events))
    writer.remove(force=True)
    sensor.unwatch(writer.id)
    other = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(other))
    other.exec_run(["bash", "-c", "echo > /tmp/after"])
    assert wait_for(lambda: "/tmp/after" in paths(events))
    assert sensor.counters.errors == 0


def deny_etc(event: FileEvent) -> Verdict:
    return Verdict.DENY if event.path.startswith("/etc/") else Verdict.ALLOW


@pytest.mark.engine
def test_prevent_refuses_writes_under_etc_and_allows_tmp(run_container):
    events: list[FileEvent] = []
    judged: list[FileEvent] = []

    def judge(event: FileEvent) -> Verdict:
        judged.append(event)
        return deny_etc(event)

    sensor = FileSensor(events.append, judge=judge)
    sensor.start()
    try:
        deb = run_container(DEBIAN, ["sleep", "600"])
        sensor.watch(rootfs_info(deb), prevent=True)
        assert sensor.guarded() == [deb.id]
        denied = deb.exec_run(["bash", "-c", "echo x > /etc/x"])
        assert denied.exit_code != 0
        assert b"Operation not permitted" in denied.output
        assert (
            deb.exec_run(["bash", "-c", "echo x > /tmp/ok && cat /etc/os-release"]).exit_code == 0
        )
        assert wait_for(lambda: "/tmp/ok" in paths(events))
        assert "/etc/x" not in paths(events)  # refused: nothing written, nothing closed
        assert [e.path for e in judged if e.path.startswith("/etc/")] == ["/etc/x"]
        assert judged[0].process_path == "/usr/bin/bash"
        assert sensor.counters.extra["write_denied"] == 1
        deb.reload()
        assert deb.status == "running"
        sensor.set_prevent(deb.id, False)  # a rule change reaches the container at once
        assert deb.exec_run(["bash", "-c", "echo x > /etc/x"]).exit_code == 0
    finally:
        sensor.stop()


def test_prevent_without_a_judge_is_refused():
    sensor = FileSensor(lambda e: None)
    with pytest.raises(SensorError, match="judge"):
        sensor.set_prevent("abc", True)


@pytest.mark.engine
def test_files_no_rule_protects_stop_costing_a_round_trip(run_container):
    def may_deny(container_id: str, path: str) -> bool:
        return path.startswith("/etc/")

    sensor = FileSensor(lambda e: None, judge=deny_etc, may_deny=may_deny)
    sensor.start()
    try:
        deb = run_container(DEBIAN, ["sleep", "600"])
        sensor.watch(rootfs_info(deb), prevent=True)
        reads = "cat /usr/lib/os-release /etc/issue > /dev/null"
        assert deb.exec_run(["bash", "-c", f"{reads}; {reads}"]).exit_code == 0
        ignored = sensor.counters.extra["open_ignored"]
        assert ignored >= 3  # cat, its loader and libc, os-release under /usr/lib
        assert deb.exec_run(["bash", "-c", reads]).exit_code == 0
        # /etc files were read but never ignored: a write there is still refused.
        denied = deb.exec_run(["bash", "-c", "echo x >> /etc/issue"])
        assert b"Operation not permitted" in denied.output
    finally:
        sensor.stop()
