"""ProcessTracker on a real ProcConnector and real containers.

Each container's shell waits on a fifo before its workload; the test writes to the fifo through
``/proc/PID/root`` once the tracker watches, so the workload's execs are exactly the ones the
script names (no ``docker exec``, whose runc processes would add their own).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.sensors.cgroup import container_of_pid, container_pids
from garrison.sensors.events import ProcessEvent
from garrison.sensors.proc_connector import ProcConnector
from garrison.sensors.process_tracker import ProcessExit, ProcessTracker, TrackedProcess
from tests.support import WAIT, became_true

pytestmark = pytest.mark.engine

DEBIAN = "garrison-test/debian:12"
LOOP_200_TRUE = "i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i+1)); done"


class Recorder:
    def __init__(self) -> None:
        self.events: list[ProcessEvent] = []
        self.execs: list[TrackedProcess] = []
        self.exits: list[ProcessExit] = []

    def execs_of(self, container_id: str) -> list[TrackedProcess]:
        return [p for p in list(self.execs) if p.container_id == container_id]


@pytest.fixture
def tracked() -> Iterator[tuple[ProcessTracker, ProcConnector, Recorder]]:
    rec = Recorder()
    tracker = ProcessTracker(rec.events.append, on_exec=rec.execs.append, on_exit=rec.exits.append)
    connector = ProcConnector(tracker).start()
    try:
        yield tracker, connector, rec
    finally:
        connector.stop()


def wait_for(predicate: Callable[[], bool]) -> bool:
    return became_true(predicate, WAIT)


def gated(run_container: Callable[..., Any], script: str, **kwargs: Any) -> tuple[Any, int]:
    """A container whose shell runs ``script`` once :func:`release` is called; its pid."""
    command = f"mkfifo /tmp/go && read x < /tmp/go && {script}; exec sleep 300"
    container = run_container(DEBIAN, ["sh", "-c", command], **kwargs)
    container.reload()
    pid = container.attrs["State"]["Pid"]
    # The fifo is there, and mkfifo gone: the shell waits alone.
    assert wait_for(
        lambda: os.path.exists(f"/proc/{pid}/root/tmp/go") and container_pids(container.id) == [pid]
    )
    return container, pid


def release(pid: int) -> None:
    with open(f"/proc/{pid}/root/tmp/go", "w") as fifo:
        fifo.write("go\n")


def test_200_short_execs_are_all_seen_in_their_container_without_drops(tracked, run_container):
    tracker, connector, rec = tracked
    container, pid = gated(run_container, LOOP_200_TRUE)
    tracker.watch(container.id)
    release(pid)
    assert wait_for(lambda: any(p.exe == "/usr/bin/sleep" for p in rec.execs_of(container.id)))
    execs = rec.execs_of(container.id)
    trues = [p for p in execs if p.exe in ("/usr/bin/true", "")]  # "": gone before read
    assert len(trues) == 200
    assert len(execs) == 201  # the 200 and the final sleep
    assert connector.counters.drops == 0
    assert {p.ppid for p in trues} == {pid}


def test_execs_the_fanotify_sensor_missed_become_process_events(tracked, run_container):
    tracker, _connector, rec = tracked
    container, pid = gated(run_container, LOOP_200_TRUE)
    tracker.watch(container.id, container.attrs["GraphDriver"]["Data"]["MergedDir"])
    release(pid)
    assert wait_for(lambda: any(p.exe == "/usr/bin/sleep" for p in rec.execs_of(container.id)))
    trues = [e for e in rec.events if e.path == "/usr/bin/true"]
    assert len(trues) + tracker.counters.late == 200
    for event in trues:
        assert (event.container_id, event.source) == (container.id, "proc_connector")
        assert (event.ppid, event.user, event.parent_path) == (pid, "root", "/usr/bin/dash")
    # A process that exits between the reads is recorded without its arguments (a zombie's
    # cmdline is empty); most are read whole.
    assert {e.argv for e in trues} <= {("/bin/true",), ()}
    assert [e for e in trues if e.argv]


def test_exits_carry_the_exit_code_and_the_container(tracked, run_container):
    tracker, _connector, rec = tracked
    # The sleep keeps the shell alive long enough for its exe to be read, never "late".
    container, pid = gated(run_container, "sh -c '/bin/sleep 0.2; exit 7'")
    tracker.watch(container.id)
    release(pid)
    assert wait_for(lambda: any(e.code == 7 for e in list(rec.exits)))
    (exit_,) = [e for e in rec.exits if e.code == 7]
    assert (exit_.container_id, exit_.path, exit_.ppid) == (container.id, "/usr/bin/dash", pid)
    assert tracker.get(exit_.pid) is None


def test_a_binary_on_a_bind_mount_is_named_as_the_container_sees_it(
    tracked, run_container, tmp_path: Path
):
    tracker, _connector, rec = tracked
    shutil.copy("/usr/bin/sleep", tmp_path / "tool")
    tmp_path.chmod(0o755)  # the container's user "nobody" must reach the tool
    container, pid = gated(
        run_container,
        "/opt/tools/tool 2",  # alive while the connector reads /proc for it
        volumes={str(tmp_path): {"bind": "/opt/tools", "mode": "ro"}},
        user="nobody",
    )
    tracker.watch(container.id)
    release(pid)
    assert wait_for(lambda: any(e.path == "/opt/tools/tool" for e in list(rec.events)))
    (event,) = [e for e in rec.events if e.path == "/opt/tools/tool"]
    assert event.argv == ("/opt/tools/tool", "2")
    assert (event.uid, event.user) == (65534, "nobody")  # from the container's /etc/passwd
    assert event.container_id == container.id


def test_execs_already_seen_by_fanotify_are_not_reported_twice(run_container):
    rec = Recorder()
    tracker = ProcessTracker(
        rec.events.append, lambda container, pid, exe: True, on_exec=rec.execs.append
    )
    container, pid = gated(run_container, "/bin/true; /bin/true")
    tracker.watch(container.id)
    with ProcConnector(tracker):
        release(pid)
        assert wait_for(lambda: len(rec.execs_of(container.id)) == 3)
    assert rec.events == []
    assert tracker.counters.events == 0


def test_only_watched_containers_are_tracked(tracked, run_container):
    tracker, _connector, rec = tracked
    watched, watched_pid = gated(run_container, "/bin/true")
    other, other_pid = gated(run_container, "/bin/true")
    tracker.watch(watched.id)
    release(other_pid)
    assert wait_for(lambda: os.readlink(f"/proc/{other_pid}/exe") == "/usr/bin/sleep")
    release(watched_pid)
    assert wait_for(lambda: any(p.exe == "/usr/bin/sleep" for p in rec.execs_of(watched.id)))
    assert {p.container_id for p in rec.execs} == {watched.id}
    assert tracker.processes(other.id) == []


def test_container_pids_and_container_of_pid_agree_with_docker(run_container):
    container, pid = gated(run_container, "true")
    assert container_pids(container.id) == [pid]
    assert container_of_pid(pid) == container.id


def test_watch_adopts_the_running_processes(tracked, run_container):
    tracker, _connector, _rec = tracked
    container, pid = gated(run_container, "true")
    tracker.watch(container.id)
    (node,) = tracker.processes(container.id)
    assert (node.pid, node.exe) == (pid, "/usr/bin/dash")
    tracker.unwatch(container.id)
    assert tracker.processes(container.id) == []
