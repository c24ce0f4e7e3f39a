"""The BPF process events source: its kernel-side filter and its events, on real containers.

Each container's shell waits on a fifo before its workload (as in the proc connector tests),
so the execs counted are exactly the script's.
"""

from __future__ import annotations

import os
import shutil
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.errors import SensorError
from garrison.sensors.bpf.build import build
from garrison.sensors.bpf.proc_events import (
    EVENT_EXEC,
    EVENT_EXIT,
    EVENT_TCP,
    BpfProcEvents,
    kernel_dev,
    parse_event,
)
from garrison.sensors.cgroup import cgroup2_mounts, container_cgroup2_id
from garrison.sensors.events import NetEvent
from garrison.sensors.proc_connector import ExecEvent, ExecRecord, ExitEvent, ProcEvent
from garrison.sensors.process_tracker import ProcessTracker
from tests.sensors.test_proc_connector_engine import (
    LOOP_200_TRUE,
    Recorder,
    gated,
    release,
    wait_for,
)

RECORD = struct.Struct("=IIIIQQQIiiIIIIIIIQ32s256s")


def record(kind: int, pid: int, tgid: int, ppid: int, cgroup: int, **fields) -> bytes:
    """A ring buffer record as proc_events.bpf.c writes it."""
    values = {"time_ns": 5_000, "ino": 0, "dev": 0, "code": 0, "signal": 0, "cpu": 1}
    values |= {"uid": 0, "args": b"", "on_rootfs": 0, "filename": b""}
    values |= {"flags": 0, "size": 0, "exe_name": b""} | fields
    return RECORD.pack(
        kind, pid, tgid, ppid, cgroup, values["time_ns"], values["ino"], values["dev"],
        values["code"], values["signal"], values["cpu"], values["uid"], len(values["args"]),
        values["on_rootfs"], 0, values["flags"], 0, values["size"], values["exe_name"],
        values["filename"],
    ) + values["args"]  # fmt: skip


# -- without the kernel -----------------------------------------------------------------------


def test_records_become_the_proc_connectors_events() -> None:
    raw = record(
        EVENT_EXEC, 11, 10, 1, 77, filename=b"/bin/nc", args=b"nc\0-l\0", uid=33, on_rootfs=1
    )
    exec_ = parse_event(raw, {77: "abc"})
    assert isinstance(exec_, ExecEvent)
    assert (exec_.pid, exec_.tgid, exec_.ppid, exec_.container_id) == (11, 10, 1, "abc")
    assert exec_.record == ExecRecord("/bin/nc", ("nc", "-l"), 33, on_rootfs=True, mode=0)
    assert parse_event(raw).container_id == ""  # type: ignore[union-attr]
    exit_ = parse_event(record(EVENT_EXIT, 10, 10, 1, 77, code=7 << 8, signal=17))
    assert isinstance(exit_, ExitEvent)
    assert (exit_.code, exit_.signal, exit_.parent_tgid, exit_.is_thread) == (7, 0, 1, False)


def test_tcp_records_become_network_events() -> None:
    def tcp(family: int, state: int, ports: tuple[int, int], saddr: bytes, daddr: bytes):
        info = struct.pack("=HHHH16s16s", family, *ports, state, saddr, daddr)
        return record(EVENT_TCP, 9, 9, 1, 77, filename=info)

    listen = parse_event(tcp(2, 10, (8080, 0), bytes(4), bytes(4)), {77: "abc"})
    assert isinstance(listen, NetEvent)
    assert (listen.container_id, listen.kind, listen.protocol) == ("abc", "listen", "tcp")
    assert (listen.local_ip, listen.local_port, listen.pid) == ("0.0.0.0", 8080, 9)
    mapped = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1])
    connect = parse_event(tcp(10, 2, (0, 443), bytes(16), mapped), {77: "abc"})
    assert isinstance(connect, NetEvent)
    assert (connect.kind, connect.remote_ip, connect.remote_port) == ("connect", "127.0.0.1", 443)


def test_an_unknown_or_short_record_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind 9"):
        parse_event(record(9, 1, 1, 1, 1))
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


def test_a_cache_that_cannot_be_written_is_a_sensor_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(SensorError, match="cannot write the BPF object"):
        build("proc_events", blocker / "cache")


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
    # The file itself, or the name it was called by when it was gone before it was read.
    trues = [p for p in rec.execs_of(container.id) if p.exe in ("/usr/bin/true", "/bin/true")]
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
    # The shell execs /bin/true after the tool has exited: the count may come a little later.
    assert wait_for(lambda: source.counters.extra.get("on_rootfs", 0) >= 1)


@engine
def test_while_learning_every_exec_of_the_root_is_recorded_at_the_exec(
    tmp_path: Path, run_container
):
    """Execs the exec sensor judged are claimed (and dropped); the others — those the kernel
    let through because their file was judged before — are reported from what the kernel
    read at the exec: no process is gone before it is read."""
    rec = Recorder()
    claimed: set[int] = set()
    tracker = ProcessTracker(rec.events.append, claim=lambda pid: "/x" if pid in claimed else None)
    container, pid = gated(run_container, LOOP_200_TRUE + "; /bin/true last")
    tracker.watch(container.id, merged_dir(container))
    with BpfProcEvents(tracker, cache_dir=tmp_path) as source:
        source.watch(container.id, merged_dir(container), record=True)
        assert source.recording(container.id)
        claimed.add(pid)  # the shell's own exec (sleep, at the end) counts as judged
        release(pid)
        assert wait_for(lambda: any(e.argv == ("/bin/true", "last") for e in list(rec.events)))
        source.record(container.id, False)
        assert not source.recording(container.id)
    trues = [e for e in rec.events if e.path == "/bin/true"]
    assert len(trues) == 201
    assert {(e.user, e.uid, e.ppid, e.parent_path) for e in trues} == {
        ("root", 0, pid, "/usr/bin/dash")
    }
    assert {e.source for e in trues} == {"proc_connector"}
    assert tracker.counters.late == 0
    assert [e.path for e in rec.events if e.path != "/bin/true"] == []  # sleep: claimed


@engine
def test_a_parent_is_named_by_its_last_recorded_exec_not_by_a_later_read(
    bpf_tracked, run_container
):
    """Records are read in batches, a moment after the execs: the shell that started a child
    may have exec'd another program since. Its recorded exec names it, in order."""
    tracker, source, rec = bpf_tracked
    script = "/bin/true first; exec /bin/bash -c '/bin/true second; sleep 1'"
    container, pid = gated(run_container, script)
    tracker.watch(container.id, merged_dir(container))
    source.watch(container.id, merged_dir(container), record=True)
    release(pid)
    assert wait_for(lambda: any(e.argv[-1:] == ("second",) for e in list(rec.events)))
    parents = {e.argv[-1]: e.parent_path for e in rec.events if e.path == "/bin/true"}
    assert parents == {"first": "/usr/bin/dash", "second": "/bin/bash"}


@engine
def test_a_setuid_file_of_the_root_is_reported_even_when_the_model_is_active(
    bpf_tracked, run_container
):
    """A file the kernel skips stays skipped after ``chmod u+s``: its execs come from here."""
    tracker, source, rec = bpf_tracked
    container, pid = gated(run_container, "/tmp/plain-id; /tmp/suid-id")
    prepare = (
        "cp /usr/bin/id /tmp/plain-id && cp /usr/bin/id /tmp/suid-id && chmod u+s /tmp/suid-id"
    )
    assert container.exec_run(["sh", "-c", prepare]).exit_code == 0
    tracker.watch(container.id, merged_dir(container))
    source.watch(container.id, merged_dir(container))  # not recording: an active model
    release(pid)
    assert wait_for(lambda: [e.path for e in list(rec.events)] == ["/tmp/suid-id"])
    (event,) = rec.events
    assert event.file_mode is not None
    assert event.file_mode & stat.S_ISUID
    assert wait_for(lambda: source.counters.extra.get("on_rootfs", 0) >= 2)  # plain-id, sleep


@engine
def test_a_shell_that_execs_a_mounted_tool_in_its_place_is_still_reported(
    tmp_path: Path, run_container
):
    """``sh -c 'exec /opt/tools/tool'``: the same pid the exec sensor judged a moment before
    runs a file off the root. The kernel says where the file is, so no claim can hide it."""
    rec = Recorder()
    tracker = ProcessTracker(rec.events.append, claim=lambda pid: "/usr/bin/dash")
    tools = tmp_path / "tools"
    tools.mkdir(mode=0o755)
    shutil.copy("/usr/bin/sleep", tools / "tool")
    volumes = {str(tools): {"bind": "/opt/tools", "mode": "ro"}}
    container, pid = gated(run_container, "exec /opt/tools/tool 0.1", volumes=volumes)
    tracker.watch(container.id, merged_dir(container))
    with BpfProcEvents(tracker, cache_dir=tmp_path / "cache") as source:
        source.watch(container.id, merged_dir(container))
        release(pid)
        assert wait_for(lambda: [e.path for e in list(rec.events)] == ["/opt/tools/tool"])
    assert rec.events[0].pid == pid


# A listener, then 20 connections each closed at once: gone long before any poll.
SHORT_CONNECTIONS = """
import socket
server = socket.create_server(("127.0.0.1", 9100))
for _ in range(20):
    socket.create_connection(("127.0.0.1", 9100)).close()
    server.accept()[0].close()
"""


@engine
def test_tcp_listens_and_connects_are_seen_as_they_happen(bpf_tracked, run_container):
    _tracker, source, _rec = bpf_tracked
    assert source.tcp_events
    got: list[NetEvent] = []
    source.add_tcp_listener(got.append)
    container, pid = gated(run_container, f"python3 -c '{SHORT_CONNECTIONS}'")
    source.watch(container.id, merged_dir(container))
    release(pid)
    assert wait_for(lambda: len([e for e in list(got) if e.kind == "connect"]) >= 20)
    listens = [e for e in got if e.kind == "listen"]
    connects = [e for e in got if e.kind == "connect"]
    assert [(e.local_ip, e.local_port) for e in listens] == [("127.0.0.1", 9100)]
    assert len(connects) == 20  # one per connect(): the sensor reports each remote end once
    assert {(e.remote_ip, e.remote_port, e.container_id) for e in connects} == {
        ("127.0.0.1", 9100, container.id)
    }
    (python,) = {e.pid for e in got}  # the shell's child, python3
    assert python != pid


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
    source._sample(record(EVENT_EXEC, 5, 5, 1, 1))
    source._sample(b"short")
    assert len(got) == 2
    assert (source.counters.events, source.counters.errors) == (1, 1)
