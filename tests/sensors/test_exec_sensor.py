"""ExecSensor against the real engine: what it records, what DENY does, and what it survives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from garrison.errors import SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import ProcessEvent, Verdict
from garrison.sensors.exec_sensor import ExecSensor, is_loader
from garrison.sensors.procfs import NotAsleep, ProcFS, Syscall
from tests.support import WAIT, became_true, rootfs_info

pytestmark = pytest.mark.engine

DEBIAN = "garrison-test/debian:12"
BUSYBOX = "garrison-test/busybox:latest"
Judge = Callable[[ProcessEvent], Verdict]


def wait_for(predicate: Callable[[], bool]) -> bool:
    return became_true(predicate, WAIT)


class Recorder:
    """An ExecSensor whose judge can be swapped, recording every event."""

    def __init__(self) -> None:
        self.events: list[ProcessEvent] = []
        self.judge: Judge = lambda event: Verdict.ALLOW
        self.sensor = ExecSensor(self._judge, self.events.append)

    def _judge(self, event: ProcessEvent) -> Verdict:
        return self.judge(event)  # looked up per event: a test may swap it

    def of(self, path: str) -> list[ProcessEvent]:
        return [e for e in self.events if e.path == path]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    rec.sensor.start()
    try:
        yield rec
    finally:
        rec.sensor.stop()


def sleeper(run_container: Any, image: str, **kwargs: Any) -> Any:
    return run_container(image, ["sleep", "600"], **kwargs)


def test_loader_names_are_recognised():
    assert is_loader("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    assert is_loader("/lib/ld-musl-x86_64.so.1")
    assert not is_loader("/usr/bin/ld")
    assert not is_loader("/usr/lib/libld.so.2")


def test_busybox_applet_is_recorded_by_the_name_asked_for(recorder: Recorder, run_container):
    box = sleeper(run_container, BUSYBOX)
    box.exec_run(["ln", "-s", "/bin/busybox", "/bin/nc"])  # the image has it as /usr/bin/nc
    recorder.sensor.watch(rootfs_info(box))
    box.exec_run(["sh", "-c", "/bin/nc -w 1 127.0.0.1 9 </dev/null; true"])
    assert wait_for(lambda: len(recorder.of("/bin/nc")) == 1)
    event = recorder.of("/bin/nc")[0]
    assert event.argv == ("/bin/nc", "-w", "1", "127.0.0.1", "9")
    assert event.resolved_path == "/bin/busybox"
    assert (event.user, event.uid) == ("root", 0)
    assert event.container_id == box.id
    assert event.parent_path == "/bin/busybox"  # the sh applet


def test_debian_nc_is_recorded_with_its_real_file(recorder: Recorder, run_container):
    deb = sleeper(run_container, DEBIAN)
    recorder.sensor.watch(rootfs_info(deb))
    deb.exec_run(["sh", "-c", "cd /tmp && /usr/bin/nc -h; true"])
    assert wait_for(lambda: len(recorder.of("/usr/bin/nc")) == 1)
    event = recorder.of("/usr/bin/nc")[0]
    assert event.resolved_path == "/usr/bin/nc.openbsd"
    assert event.argv == ("/usr/bin/nc", "-h")
    assert event.parent_path == "/usr/bin/dash"
    assert event.ppid > 0
    assert event.pid > 0
    # One event per exec: the loader's event is recognised, not recorded.
    assert not [e for e in recorder.events if is_loader(e.resolved_path)]


def test_user_is_named_from_the_containers_passwd(recorder: Recorder, run_container):
    deb = sleeper(run_container, DEBIAN, user="65534")
    recorder.sensor.watch(rootfs_info(deb))
    deb.exec_run(["/usr/bin/id", "-u"], user="65534")
    assert wait_for(lambda: len(recorder.of("/usr/bin/id")) == 1)
    event = recorder.of("/usr/bin/id")[0]
    assert (event.uid, event.user) == (65534, "nobody")


def test_relative_names_and_scripts_are_recorded_as_asked(recorder: Recorder, run_container):
    deb = sleeper(run_container, DEBIAN)
    recorder.sensor.watch(rootfs_info(deb))
    script = "printf '#!/bin/sh\\nexit 0\\n' > /tmp/s.sh && chmod +x /tmp/s.sh"
    deb.exec_run(["sh", "-c", f"{script} && cd /usr/bin && ./true rel && /tmp/s.sh one"])
    assert wait_for(lambda: len(recorder.of("/tmp/s.sh")) == 1)
    assert wait_for(lambda: len(recorder.of("/usr/bin/true")) == 1)
    assert recorder.of("/usr/bin/true")[0].argv == ("./true", "rel")
    script_event = recorder.of("/tmp/s.sh")[0]
    assert script_event.argv == ("/tmp/s.sh", "one")
    # The interpreter's event of that same execve is not a second process.
    assert not [e for e in recorder.events if e.pid == script_event.pid and e is not script_event]


def test_500_short_execs_with_distinct_arguments_are_all_recorded(
    recorder: Recorder, run_container
):
    deb = sleeper(run_container, DEBIAN)
    recorder.sensor.watch(rootfs_info(deb))
    result = deb.exec_run(["bash", "-c", "for i in $(seq 1 500); do /usr/bin/true arg-$i; done"])
    assert result.exit_code == 0
    assert wait_for(lambda: len(recorder.of("/usr/bin/true")) >= 500)
    argvs = [e.argv for e in recorder.of("/usr/bin/true")]
    assert len(argvs) == 500
    assert set(argvs) == {("/usr/bin/true", f"arg-{i}") for i in range(1, 501)}
    assert recorder.sensor.counters.late == 0
    assert recorder.sensor.counters.errors == 0


def test_four_concurrent_loops_on_two_cores_lose_no_exec(recorder: Recorder, run_container):
    # Under load a woken listener may read /proc/TID/syscall before the task that raised
    # the event has gone to sleep ("running"): such events were once allowed unjudged.
    deb = sleeper(run_container, DEBIAN)
    recorder.sensor.watch(rootfs_info(deb))
    loop = "for i in $(seq 1 300); do /usr/bin/true $j-$i; done"
    script = f"for j in 1 2 3 4; do ({loop}) & done; wait"
    assert deb.exec_run(["bash", "-c", script]).exit_code == 0
    assert wait_for(lambda: len(recorder.of("/usr/bin/true")) >= 1200)
    argvs = {e.argv[1] for e in recorder.of("/usr/bin/true")}
    assert argvs == {f"{j}-{i}" for j in range(1, 5) for i in range(1, 301)}
    assert "not_in_exec" not in recorder.sensor.counters.extra
    assert recorder.sensor.counters.late == 0


class Sleepless(ProcFS):
    """A /proc whose tasks never go to sleep in time (as under a CPU-throttled cgroup)."""

    def waiting_syscall(self, pid: int, patience: float = 0.0) -> Syscall | None:
        raise NotAsleep(pid)


def test_an_exec_whose_caller_never_sleeps_is_judged_by_its_real_file(run_container):
    events: list[ProcessEvent] = []

    def judge(event: ProcessEvent) -> Verdict:
        return Verdict.DENY if event.path == "/usr/bin/nc.openbsd" else Verdict.ALLOW

    sensor = ExecSensor(judge, events.append, procfs=Sleepless())
    deb = sleeper(run_container, DEBIAN)
    sensor.start()
    try:
        sensor.watch(rootfs_info(deb))
        result = deb.exec_run(["sh", "-c", "/usr/bin/nc -h; echo status=$?"])
    finally:
        sensor.stop()
    assert b"status=126" in result.output
    nc = [e for e in events if e.path == "/usr/bin/nc.openbsd"]
    assert len(nc) == 1
    assert (nc[0].argv, nc[0].resolved_path, nc[0].user) == ((), "/usr/bin/nc.openbsd", "root")
    assert sensor.counters.extra["unread_args"] >= 2  # sh and nc; the loader is skipped
    assert "not_in_exec" not in sensor.counters.extra


class OrderedSensor(ExecSensor):
    """Writes down when each exec is admitted, judged and answered."""

    def __init__(self, refusable: str) -> None:
        super().__init__(self._judge_it, lambda e: None, admit=self._admit_it)
        self.refusable = refusable
        self.steps: list[str] = []

    def _admit_it(self, event: ProcessEvent) -> bool:
        self.steps.append(f"admit {event.path}")
        return event.path == self.refusable

    def _judge_it(self, event: ProcessEvent) -> Verdict:
        self.steps.append(f"judge {event.path}")
        return Verdict.ALLOW

    def _answer(self, raw: Any, event: ProcessEvent | None, verdict: Verdict) -> None:
        self.steps.append(f"answer {event.path if event else None}")
        super()._answer(raw, event, verdict)

    def of(self, path: str) -> list[str]:
        return [step for step in self.steps if step.endswith(f" {path}")]


def test_an_exec_nothing_could_refuse_is_answered_before_it_is_judged(run_container):
    sensor = OrderedSensor(refusable="/usr/bin/id")
    deb = sleeper(run_container, DEBIAN)
    sensor.start()
    try:
        sensor.watch(rootfs_info(deb))
        deb.exec_run(["sh", "-c", "/usr/bin/true; /usr/bin/id"])
        assert wait_for(lambda: "judge /usr/bin/id" in sensor.steps)
    finally:
        sensor.stop()
    assert sensor.of("/usr/bin/true") == [
        "admit /usr/bin/true",
        "answer /usr/bin/true",
        "judge /usr/bin/true",
    ]
    assert sensor.of("/usr/bin/id") == [
        "admit /usr/bin/id",
        "judge /usr/bin/id",
        "answer /usr/bin/id",
    ]


def test_deny_makes_nc_fail_while_the_container_runs_on(recorder: Recorder, run_container):
    deb = sleeper(run_container, DEBIAN)
    recorder.judge = lambda e: Verdict.DENY if e.path == "/usr/bin/nc" else Verdict.ALLOW
    recorder.sensor.watch(rootfs_info(deb))
    result = deb.exec_run(["sh", "-c", "/usr/bin/nc -h; echo status=$?"])
    assert b"/usr/bin/nc: Operation not permitted" in result.output
    assert b"status=126" in result.output
    deb.reload()
    assert deb.status == "running"
    assert deb.exec_run(["/usr/bin/true"]).exit_code == 0
    assert recorder.sensor.counters.extra["denied"] == 1


def test_allow_always_lets_the_kernel_skip_the_file_until_it_changes(
    recorder: Recorder, run_container
):
    deb = sleeper(run_container, DEBIAN)
    recorder.judge = lambda e: Verdict.ALLOW_ALWAYS if e.path == "/tmp/t" else Verdict.ALLOW
    recorder.sensor.watch(rootfs_info(deb))
    deb.exec_run(["sh", "-c", "cp /usr/bin/true /tmp/t && for i in 1 2 3 4 5; do /tmp/t; done"])
    assert wait_for(lambda: len(recorder.of("/tmp/t")) >= 1)
    assert len(recorder.of("/tmp/t")) == 1
    # Without FAN_MARK_IGNORED_SURV_MODIFY a write drops the ignore mark: judged again.
    deb.exec_run(["sh", "-c", "printf x >> /tmp/t && /tmp/t"])
    assert wait_for(lambda: len(recorder.of("/tmp/t")) == 2)


def test_sink_errors_are_counted_and_execs_go_on(run_container):
    def broken_sink(event: ProcessEvent) -> None:
        raise RuntimeError("sink down")

    sensor = ExecSensor(lambda e: Verdict.ALLOW, broken_sink)
    sensor.start()
    try:
        deb = sleeper(run_container, DEBIAN)
        sensor.watch(rootfs_info(deb))
        assert deb.exec_run(["/usr/bin/true"]).exit_code == 0
        assert wait_for(lambda: sensor.counters.errors >= 1)
    finally:
        sensor.stop()


def test_container_exiting_mid_events_does_not_break_the_sensor(recorder: Recorder, run_container):
    loop = "while true; do /usr/bin/true; done"
    busy = run_container(DEBIAN, ["bash", "-c", loop])
    recorder.sensor.watch(rootfs_info(busy))
    assert wait_for(lambda: len(recorder.of("/usr/bin/true")) >= 50)
    busy.kill()
    busy.remove(force=True)
    recorder.sensor.unwatch(busy.id)
    other = sleeper(run_container, DEBIAN)
    recorder.sensor.watch(rootfs_info(other))
    assert other.exec_run(["/usr/bin/id"]).exit_code == 0
    assert wait_for(lambda: len(recorder.of("/usr/bin/id")) == 1)
    assert recorder.sensor.watched() == [other.id]


def test_stop_with_a_stuck_judge_lets_the_waiting_exec_through(run_container):
    hold, entered = threading.Event(), threading.Event()

    def stuck_judge(event: ProcessEvent) -> Verdict:
        entered.set()
        hold.wait(30)
        return Verdict.DENY

    sensor = ExecSensor(stuck_judge, lambda e: None)
    sensor.start()
    deb = sleeper(run_container, DEBIAN)
    sensor.watch(rootfs_info(deb))
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(deb.exec_run(["true"]).exit_code))
    worker.start()
    try:
        assert entered.wait(30)
        sensor.stop()  # closing the group answers FAN_ALLOW for every pending event
        worker.join(30)
        assert result == [0]
    finally:
        hold.set()


CHILD = """
import sys, time
from garrison.errors import SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import Verdict
from garrison.sensors.exec_sensor import ExecSensor
seen = []
sensor = ExecSensor(lambda e: Verdict.ALLOW, seen.append)
sensor.start()
sensor.watch(ContainerInfo(sys.argv[1], "c", "", "", merged_dir=sys.argv[2]))
print("ready", flush=True)
while True:
    print(len(seen), flush=True)
    time.sleep(0.05)
"""


def test_sigkill_of_the_listener_mid_storm_lets_the_loop_complete(run_container):
    deb = sleeper(run_container, DEBIAN)
    c = rootfs_info(deb)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, c.id, c.merged_dir or ""], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        result: list[Any] = []
        loop = "for i in $(seq 1 2000); do /usr/bin/true $i; done; echo done"
        worker = threading.Thread(target=lambda: result.append(deb.exec_run(["bash", "-c", loop])))
        worker.start()
        while int(child.stdout.readline()) < 200:
            pass
        os.kill(child.pid, signal.SIGKILL)
        worker.join(120)
        assert result[0].exit_code == 0
        assert result[0].output == b"done\n"
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def test_a_failing_judge_allows_and_still_records(run_container):
    def broken_judge(event: ProcessEvent) -> Verdict:
        raise RuntimeError("judge down")

    events: list[ProcessEvent] = []
    sensor = ExecSensor(broken_judge, events.append)
    sensor.start()
    try:
        deb = sleeper(run_container, DEBIAN)
        sensor.watch(rootfs_info(deb))
        assert deb.exec_run(["/usr/bin/id"]).exit_code == 0
        assert wait_for(lambda: any(e.path == "/usr/bin/id" for e in events))
        assert sensor.counters.errors >= 1
    finally:
        sensor.stop()


def test_watch_of_a_container_without_root_is_a_sensor_error():
    sensor = ExecSensor(lambda e: Verdict.ALLOW, lambda e: None)
    with pytest.raises(SensorError, match="not a directory"):
        sensor.watch(ContainerInfo("x" * 64, "gone", "", "", merged_dir="/nonexistent/merged"))
    sensor.unwatch("never-watched")  # harmless
