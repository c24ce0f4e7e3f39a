"""FileSensor against the real engine: entries made or removed without a write — rename,
unlink, mkdir, link — reported with their container path, kind and actor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.sensors.events import FileEvent, Verdict
from garrison.sensors.file_sensor import FileSensor
from tests.sensors.test_file_sensor import DEBIAN, wait_for
from tests.support import rootfs_info

pytestmark = pytest.mark.engine


@pytest.fixture
def recorded() -> Iterator[tuple[FileSensor, list[FileEvent]]]:
    events: list[FileEvent] = []
    sensor = FileSensor(events.append)
    sensor.start()
    try:
        yield sensor, events
    finally:
        sensor.stop()


def find(events: list[FileEvent], kind: str, path: str) -> FileEvent | None:
    return next((e for e in events if e.kind == kind and e.path == path), None)


def wait_event(events: list[FileEvent], kind: str, path: str) -> FileEvent:
    assert wait_for(lambda: find(events, kind, path) is not None), (kind, path, events)
    event = find(events, kind, path)
    assert event is not None
    return event


def test_every_directory_of_the_root_is_marked(recorded, run_container) -> None:
    sensor, _ = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    merged = rootfs_info(deb).merged_dir
    assert merged is not None
    dirs = sum(1 for p in Path(merged).rglob("*") if p.is_dir() and not p.is_symlink()) + 1
    assert sensor.dirents.marked(deb.id) == dirs


def test_a_file_moved_into_etc_is_a_create_of_its_new_path(recorded, run_container) -> None:
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    assert deb.exec_run(["sh", "-c", "echo x > /tmp/x && mv /tmp/x /etc/x"]).exit_code == 0
    moved = wait_event(events, "create", "/etc/x")
    assert moved.container_id == deb.id
    assert moved.pid > 0
    # mv's rename, or dash's write of /tmp/x: the write notification names the file by its
    # path when it is read, which is /etc/x once mv renamed it ("": the writer had exited).
    assert moved.process_path in ("/usr/bin/mv", "/usr/bin/dash", "")


def test_an_image_file_removed_is_a_delete(recorded, run_container) -> None:
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    assert deb.exec_run(["rm", "/etc/issue"]).exit_code == 0
    removed = wait_event(events, "delete", "/etc/issue")
    assert removed.pid > 0
    assert removed.process_path in ("/usr/bin/rm", "")


def test_a_new_directory_is_a_create_and_is_followed(recorded, run_container) -> None:
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    assert deb.exec_run(["mkdir", "/etc/newdir"]).exit_code == 0
    made = wait_event(events, "create", "/etc/newdir")
    assert made.pid > 0
    assert made.process_path in ("/usr/bin/mkdir", "")
    # Marked when its event arrived: what happens in it from then on is seen too.
    assert deb.exec_run(["ln", "-s", "/bin/sh", "/etc/newdir/sh"]).exit_code == 0
    wait_event(events, "create", "/etc/newdir/sh")
    assert deb.exec_run(["rm", "-r", "/etc/newdir"]).exit_code == 0
    wait_event(events, "delete", "/etc/newdir")


def test_the_actor_is_the_process_that_renamed_with_its_executable(recorded, run_container) -> None:
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    script = "import os, time; os.rename('/tmp/y', '/etc/y'); time.sleep(600)"
    assert deb.exec_run(["sh", "-c", "echo y > /tmp/y"]).exit_code == 0
    deb.exec_run(["python3", "-c", script], detach=True)  # stays alive: /proc can be checked
    moved = wait_event(events, "create", "/etc/y")
    assert moved.process_path.startswith("/usr/bin/python3")
    assert b"os.rename" in Path(f"/proc/{moved.pid}/cmdline").read_bytes()


def test_a_directory_moved_in_keeps_being_followed_under_its_new_path(
    recorded, run_container
) -> None:
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    assert deb.exec_run(["sh", "-c", "mkdir -p /tmp/d/e && mv /tmp/d /etc/d"]).exit_code == 0
    wait_event(events, "create", "/etc/d")
    assert deb.exec_run(["sh", "-c", "ln -s x /etc/d/e/l"]).exit_code == 0
    wait_event(events, "create", "/etc/d/e/l")


def test_a_file_created_by_open_is_left_to_the_write_events(recorded, run_container) -> None:
    sensor, events = recorded
    deb = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(deb))
    assert deb.exec_run(["sh", "-c", "echo x > /tmp/new && mkdir /tmp/after"]).exit_code == 0
    wait_event(events, "create", "/tmp/after")  # the group's events come in order
    wait_event(events, "create", "/tmp/new")
    assert [e.path for e in events if e.path == "/tmp/new"] == ["/tmp/new"]  # once, at close
    assert deb.exec_run(["ln", "/tmp/new", "/tmp/hard"]).exit_code == 0  # a link is recorded
    wait_event(events, "create", "/tmp/hard")


def test_unwatch_and_removal_leave_no_marks_and_no_errors(recorded, run_container) -> None:
    sensor, events = recorded
    kept = run_container(DEBIAN, ["sleep", "600"])
    gone = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(kept))
    sensor.watch(rootfs_info(gone))
    sensor.unwatch(kept.id)
    assert sensor.dirents.marked(kept.id) == 0
    assert kept.exec_run(["mkdir", "/etc/unseen"]).exit_code == 0
    gone.remove(force=True)
    sensor.unwatch(gone.id)
    other = run_container(DEBIAN, ["sleep", "600"])
    sensor.watch(rootfs_info(other))
    assert other.exec_run(["mkdir", "/etc/seen"]).exit_code == 0
    wait_event(events, "create", "/etc/seen")
    assert find(events, "create", "/etc/unseen") is None
    assert sensor.counters.errors == 0


def test_a_rename_into_a_guarded_directory_is_not_refused_but_recorded(run_container) -> None:
    events: list[FileEvent] = []

    def judge(event: FileEvent) -> Verdict:
        return Verdict.DENY if event.path.startswith("/etc/") else Verdict.ALLOW

    sensor = FileSensor(events.append, judge=judge)
    sensor.start()
    try:
        deb = run_container(DEBIAN, ["sleep", "600"])
        sensor.watch(rootfs_info(deb), prevent=True)
        assert deb.exec_run(["sh", "-c", "echo x > /etc/x"]).exit_code != 0  # refused at open
        assert deb.exec_run(["sh", "-c", "echo y > /tmp/y && mv /tmp/y /etc/y"]).exit_code == 0
        wait_event(events, "create", "/etc/y")
        # The empty /etc/x the refused O_CREAT open left is not reported as a creation.
        assert find(events, "create", "/etc/x") is None
    finally:
        sensor.stop()
