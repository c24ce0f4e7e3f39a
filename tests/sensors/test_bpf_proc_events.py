"""The BPF process events source: its kernel-side filter and its events, on real containers.

Each container's shell waits on a fifo before its workload (as in the proc connector tests),
so the execs counted are exactly the script's.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.errors import SensorError
from garrison.sensors.bpf.build import build
from garrison.sensors.bpf.proc_events import (
    EVENT_EXEC,
    EVENT_EXIT,
    BpfProcEvents,
    kernel_dev,
    parse_event,
)
from garrison.sensors.cgroup import cgroup2_mounts, container_cgroup2_id
from garrison.sensors.proc_connector import ExecEvent, ExitEvent, ProcEvent
from garrison.sensors.process_tracker import ProcessTracker
from tests.sensors.test_proc_connector_engine import (
    LOOP_200_TRUE,
    Recorder,
    gated,
    release,
    wait_for,
)

RECORD = struct.Struct("=IIIIQQQIiiI")


# -- without the kernel -----------------------------------------------------------------------


def test_records_become_the_proc_connectors_events() -> None:
    record = RECORD.pack(EVENT_EXEC, 11, 10, 1, 77, 5_000, 42, 3, 0, 0, 1)
    exec_ = parse_event(record, {77: "abc"})
    assert exec_ == ExecEvent(1, 0, 5_000, pid=11, tgid=10, container_id="abc", ppid=1)
    assert parse_event(record) == ExecEvent(1, 0, 5_000, pid=11, tgid=10, ppid=1)
    exit_ = parse_event(RECORD.pack(EVENT_EXIT, 10, 10, 1, 77, 6_000, 0, 0, 7 << 8, 17, 0))
    assert isinstance(exit_, ExitEvent)
    assert (exit_.code, exit_.signal, exit_.parent_tgid, exit_.is_thread) == (7, 0, 1, False)


def test_an_unknown_or_short_record_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind 9"):
        parse_event(RECORD.pack(9, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0))
    with pytest.raises(struct.error):
        parse_event(b"\x01\x00")


def test_device_numbers_are_encoded_as_the_kernel_keeps_them() -> None:
    assert kernel_dev(os.makedev(0, 0x123)) == 0x123
    assert kernel_dev(os.makedev(8, 1)) == (8 << 20) | 1


def test_cgroup2_mounts_are_read_from_mountinfo(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
        "31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n"
        "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    )
    assert cgroup2_mounts(str(mountinfo)) == ["/sys/fs/cgroup/unified"]
    assert cgroup2_mounts(str(tmp_path / "missing")) == []


def test_a_program_that_does_not_compile_is_a_sensor_error(tmp_path: Path) -> None:
    (tmp_path / "broken.bpf.c").write_text("int f(void) { return undeclared; }\n")
    with pytest.raises(SensorError, match=r"BPF compile failed.*undeclared"):
        build("broken", tmp_path / "cache", sources=tmp_path)


def test_a_compiled_program_is_cached(tmp_path: Path) -> None:
    first = build("proc_events", tmp_path)
    mtime = first.stat().st_mtime_ns
    assert build("proc_events", tmp_path) == first
    assert first.stat().st_mtime_ns == mtime


# -- in the kernel, on real containers --------------------------------------------------------

engine = pytest.mark.engine


@pytest.fixture
def bpf_tracked(tmp_path: Path) -> Iterator[tuple[ProcessTracker, BpfProcEvents, Recorder]]:
    rec = Recorder()
    tracker = ProcessTracker(rec.events.append, on_exec=rec.execs.append, on_exit=rec.exits.append)
    source = BpfProcEvents(tracker, cache_dir=tmp_path / "cache").start()
    try:
        yield tracker, source, rec
    finally:
        source.stop()


def merged_dir(container) -> str:
    return str(container.attrs["GraphDriver"]["Data"]["MergedDir"])


@engine
def test_execs_on_the_root_file_system_are_left_to_fanotify(bpf_tracked, run_container):
    tracker, source, rec = bpf_tracked
    container, pid = gated(run_container, LOOP_200_TRUE)
    tracker.watch(container.id, merged_dir(container))
    source.watch(container.id, merged_dir(container))
    release(pid)
    assert wait_for(lambda: source.counters.extra.get("on_rootfs", 0) >= 201)
    assert source.counters.extra["on_rootfs"] == 201  # the 200 and the final sleep
    assert (source.counters.events, source.counters.drops) == (0, 0)
    assert rec.execs == []


@engine
def test_without_a_covered_root_every_exec_and_its_exit_is_reported(bpf_tracked, run_container):
    tracker, source, rec = bpf_tracked
    container, pid = gated(run_container, LOOP_200_TRUE)
    tracker.watch(container.id)
    source.watch(container.id)
    release(pid)
    assert wait_for(lambda: any(p.exe == "/usr/bin/sleep" for p in rec.execs_of(container.id)))
    trues = [p for p in rec.execs_of(container.id) if p.exe in ("/usr/bin/true", "")]
    assert len(trues) == 200
    assert {p.ppid for p in trues} == {pid}
    assert wait_for(lambda: len(rec.exits) >= 200)
    assert {e.container_id for e in rec.exits} == {container.id}
    assert source.counters.drops == 0


@engine
def test_a_binary_on_a_bind_mount_is_reported_with_its_exit(
    bpf_tracked, run_container, tmp_path: Path
):
    tracker, source, rec = bpf_tracked
    tools = tmp_path / "tools"
    tools.mkdir(mode=0o755)
    shutil.copy("/usr/bin/sleep", tools / "tool")
    container, pid = gated(
        run_container,
        "/opt/tools/tool 0.1; /bin/true",
        volumes={str(tools): {"bind": "/opt/tools", "mode": "ro"}},
    )
    tracker.watch(container.id, merged_dir(container))
    source.watch(container.id, merged_dir(container))
    release(pid)
    assert wait_for(lambda: any(e.path == "/opt/tools/tool" for e in list(rec.events)))
    (event,) = rec.events
    assert (event.argv, event.user, event.ppid) == (("/opt/tools/tool", "0.1"), "root", pid)
    assert event.container_id == container.id
    assert wait_for(lambda: [e.path for e in rec.exits] == ["/opt/tools/tool"])
    assert source.counters.extra["on_rootfs"] >= 1  # /bin/true, then sleep


@engine
def test_unwatched_containers_cost_nothing_in_user_space(bpf_tracked, run_container):
    _tracker, source, _rec = bpf_tracked
    container, pid = gated(run_container, LOOP_200_TRUE)
    source.watch(container.id)
    source.unwatch(container.id)
    release(pid)
    assert wait_for(lambda: os.readlink(f"/proc/{pid}/exe") == "/usr/bin/sleep")
    assert source.counters.events == 0
    assert source.counters.extra.get("on_rootfs", 0) == 0


@engine
def test_the_cgroup_id_is_what_the_kernel_reports(run_container):
    container, _pid = gated(run_container, "true")
    cgroup = container_cgroup2_id(container.id)
    assert cgroup is not None
    assert container_cgroup2_id("0" * 64) is None


def test_received_events_reach_every_listener(tmp_path: Path) -> None:
    got: list[ProcEvent] = []
    source = BpfProcEvents(got.append, cache_dir=tmp_path)
    source.add_listener(got.append)
    source._sample(RECORD.pack(EVENT_EXEC, 5, 5, 1, 1, 1, 1, 1, 0, 0, 0))
    source._sample(b"short")
    assert len(got) == 2
    assert (source.counters.events, source.counters.errors) == (1, 1)
