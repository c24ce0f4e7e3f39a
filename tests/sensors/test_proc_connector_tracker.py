"""ProcessTracker fed events by hand: what it ignores, and that odd input never raises."""

from __future__ import annotations

import os
from pathlib import Path

from garrison.sensors.cgroup import container_of_pid, container_pids
from garrison.sensors.events import ProcessEvent
from garrison.sensors.proc_connector import ExecEvent, ExitEvent, ForkEvent, parse_datagram
from garrison.sensors.process_tracker import ProcessTracker

DATA = Path(__file__).parent / "data"
UNUSED_PID = 4194304  # above the kernel's pid_max limit: never a real process


def test_events_of_processes_in_no_watched_container_are_ignored():
    events: list[ProcessEvent] = []
    tracker = ProcessTracker(events.append)
    tracker.watch("0" * 64)  # a container that does not exist: nothing to adopt
    for name in ("fork", "exec", "exit_code3", "fork_thread", "exit_thread"):
        for event in parse_datagram((DATA / f"pc_{name}.bin").read_bytes()):
            tracker(event)
    tracker(ExecEvent(0, 0, 0, os.getpid(), os.getpid()))  # this host process
    assert events == []
    assert tracker.counters == type(tracker.counters)()


def test_events_of_pids_that_do_not_exist_are_ignored():
    tracker = ProcessTracker(lambda e: None)
    tracker(ForkEvent(0, 0, 0, UNUSED_PID, UNUSED_PID, UNUSED_PID + 1, UNUSED_PID + 1))
    tracker(ExecEvent(0, 1, 0, UNUSED_PID, UNUSED_PID))
    tracker(ExitEvent(0, 2, 0, UNUSED_PID, UNUSED_PID, 0, 17))
    assert tracker.get(UNUSED_PID) is None
    assert tracker.prune() == 0


CONTAINER = "ab" * 32


def test_container_pids_reads_cgroup_procs_of_each_layout_and_child_cgroups(tmp_path: Path):
    v1 = tmp_path / "v1" / "pids" / "docker" / CONTAINER
    (v1 / "child").mkdir(parents=True)
    (v1 / "cgroup.procs").write_text("12\n7\n")
    (v1 / "child" / "cgroup.procs").write_text("30\n")
    systemd = tmp_path / "v2" / "system.slice" / f"docker-{CONTAINER}.scope"
    systemd.mkdir(parents=True)
    (systemd / "cgroup.procs").write_text("5\n")
    assert container_pids(CONTAINER, str(tmp_path / "v1")) == [7, 12, 30]
    assert container_pids(CONTAINER, str(tmp_path / "v2")) == [5]
    assert container_pids("cd" * 32, str(tmp_path / "v1")) == []


def test_a_host_process_is_in_no_container():
    assert container_of_pid(os.getpid()) is None
    assert container_of_pid(UNUSED_PID) is None
