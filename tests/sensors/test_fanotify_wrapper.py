"""The fanotify wrapper: event batches captured on this machine, and a real group."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from garrison.errors import SensorError
from garrison.sensors import fanotify as fan
from garrison.sensors.fanotify_loop import ReaderThread
from tests.support import wait_for

DATA = Path(__file__).parent / "data"


def test_one_read_holds_a_batch_of_events():
    # Captured: `sh -c 'echo x > /tmp/x; /usr/bin/true'` in a Debian container, with
    # FAN_OPEN_EXEC | FAN_CLOSE_WRITE on its overlay: sh, its loader, the write, true, loader.
    events = list(fan.parse_events((DATA / "fan_events_batch.bin").read_bytes()))
    masks = [e.mask for e in events]
    assert masks == [fan.FAN_OPEN_EXEC] * 2 + [fan.FAN_CLOSE_WRITE] + [fan.FAN_OPEN_EXEC] * 2
    assert [e.fd for e in events] == [11, 12, 13, 14, 15]
    assert {e.pid for e in events} == {6630, 6639}
    assert not any(e.is_permission for e in events)


def test_a_truncated_batch_yields_only_whole_events():
    raw = (DATA / "fan_events_batch.bin").read_bytes()
    assert len(list(fan.parse_events(raw[:30]))) == 1


def test_a_foreign_metadata_version_is_refused():
    raw = bytearray((DATA / "fan_events_batch.bin").read_bytes())
    raw[4] = 2
    with pytest.raises(SensorError, match="version"):
        list(fan.parse_events(bytes(raw)))


def test_permission_mask_bits_are_recognised():
    assert fan.RawEvent(fan.FAN_OPEN_EXEC_PERM, 3, 1).is_permission
    assert fan.RawEvent(fan.FAN_OPEN_PERM, 3, 1).is_permission
    assert not fan.RawEvent(fan.FAN_CLOSE_WRITE, 3, 1).is_permission


def test_a_real_group_sees_a_write_in_a_marked_directory(tmp_path: Path):
    group = fan.FanotifyGroup(fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK)
    try:
        group.mark(fan.FAN_MARK_ADD, fan.FAN_CLOSE_WRITE | fan.FAN_EVENT_ON_CHILD, str(tmp_path))
        assert group.read() == []
        (tmp_path / "f").write_text("x")
        events = group.read()
        assert [e.mask for e in events] == [fan.FAN_CLOSE_WRITE]
        assert events[0].pid == os.getpid()
        assert os.readlink(f"/proc/self/fd/{events[0].fd}") == str(tmp_path / "f")
        os.close(events[0].fd)
    finally:
        group.close()


def test_marking_a_missing_path_is_a_sensor_error(tmp_path: Path):
    group = fan.FanotifyGroup(fan.FAN_CLASS_NOTIF)
    try:
        with pytest.raises(SensorError, match="No such file"):
            group.mark(fan.FAN_MARK_ADD, fan.FAN_CLOSE_WRITE, str(tmp_path / "missing"))
    finally:
        group.close()


def test_the_reader_thread_outlives_a_failing_handler(tmp_path: Path):
    group = fan.FanotifyGroup(fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK)
    seen: list[str] = []
    done = threading.Event()

    def handle(raw: fan.RawEvent) -> None:
        name = os.readlink(f"/proc/self/fd/{raw.fd}")
        os.close(raw.fd)
        seen.append(name)
        if name.endswith("first"):
            raise RuntimeError("handler bug")
        done.set()

    group.mark(fan.FAN_MARK_ADD, fan.FAN_CLOSE_WRITE | fan.FAN_EVENT_ON_CHILD, str(tmp_path))
    reader = ReaderThread("test-reader", group, handle)
    reader.start()
    try:
        (tmp_path / "first").write_text("x")
        (tmp_path / "second").write_text("x")
        assert done.wait(10)
        assert [Path(p).name for p in seen] == ["first", "second"]
    finally:
        assert reader.stop()
        group.close()


def test_a_group_says_how_many_bytes_of_events_wait_to_be_read(tmp_path: Path):
    group = fan.FanotifyGroup(fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK)
    try:
        group.mark(fan.FAN_MARK_ADD, fan.FAN_CLOSE_WRITE | fan.FAN_EVENT_ON_CHILD, str(tmp_path))
        assert group.pending() == 0
        (tmp_path / "f").write_text("x")
        assert group.pending() > 0
        for event in group.read():
            os.close(event.fd)
        assert group.pending() == 0
    finally:
        group.close()
    assert group.pending() == 0  # closed: nothing more will come


def test_the_reader_is_caught_up_only_once_its_batch_is_handled(tmp_path: Path):
    group = fan.FanotifyGroup(fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK)
    taken, release, handled = threading.Event(), threading.Event(), threading.Event()

    def handle(raw: fan.RawEvent) -> None:
        os.close(raw.fd)
        taken.set()
        release.wait(10)
        handled.set()

    group.mark(fan.FAN_MARK_ADD, fan.FAN_CLOSE_WRITE | fan.FAN_EVENT_ON_CHILD, str(tmp_path))
    reader = ReaderThread("test-reader", group, handle)
    reader.start()
    try:
        assert reader.caught_up()
        (tmp_path / "f").write_text("x")
        assert not reader.caught_up()  # queued in the kernel, or read and being handled
        assert taken.wait(10)
        assert group.pending() == 0  # read,
        assert not reader.caught_up()  # not yet handled
        release.set()
        assert handled.wait(10)
        wait_for("the reader to finish its batch", reader.caught_up)
    finally:
        release.set()
        assert reader.stop()
        group.close()
    assert reader.caught_up()  # stopped: nothing more comes
