"""ProcConnector on the real kernel (root): host processes this test starts."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable

from garrison.sensors.proc_connector import (
    ExecEvent,
    ExitEvent,
    ForkEvent,
    ProcConnector,
    ProcEvent,
)
from tests.support import WAIT, became_true


def wait_for(predicate: Callable[[], bool]) -> bool:
    return became_true(predicate, WAIT)


def test_fork_exec_and_exit_of_a_child_are_seen_with_its_exit_code():
    events: list[ProcEvent] = []
    with ProcConnector(events.append):
        child = subprocess.run(["/bin/sh", "-c", "exit 7"], check=False)
        assert wait_for(lambda: any(isinstance(e, ExitEvent) and e.code == 7 for e in list(events)))
    child_pid = next(e.tgid for e in events if isinstance(e, ExitEvent) and e.code == 7)
    assert any(isinstance(e, ForkEvent) and e.child_tgid == child_pid for e in events)
    assert any(isinstance(e, ExecEvent) and e.tgid == child_pid for e in events)
    assert child.returncode == 7


def test_a_full_socket_buffer_is_counted_as_drops():
    """A gap is seen from a CPU's last event before the loss to its next one after: every CPU
    has an event read before the reader stalls, and another after it reads again."""
    stalling, release = threading.Event(), threading.Event()
    cpus_seen: set[int] = set()

    def stall(event: ProcEvent) -> None:
        cpus_seen.add(event.cpu)
        if stalling.is_set():
            release.wait(30)  # the reader stops reading: the kernel queue fills up

    def event_on_every_cpu() -> None:
        for cpu in sorted(os.sched_getaffinity(0)):
            subprocess.run(["taskset", "-c", str(cpu), "/bin/true"], check=True)

    def every_cpu_seen() -> bool:
        event_on_every_cpu()
        return cpus_seen >= os.sched_getaffinity(0)

    connector = ProcConnector(stall, rcvbuf=4096)
    with connector:
        assert became_true(every_cpu_seen, WAIT, step=0.2)
        stalling.set()
        for _ in range(100):
            subprocess.run(["/bin/true"], check=True)
        release.set()

        def counted() -> bool:
            event_on_every_cpu()  # again until read: the reader may still be draining
            return connector.counters.drops >= 100

        # 300 events made, a handful fit in 4 KiB: the sequence gaps count the rest.
        assert became_true(counted, WAIT, step=0.2)
    assert connector.counters.extra["overruns"] >= 1


def test_stop_ends_the_reader_and_can_be_called_twice():
    connector = ProcConnector().start()
    assert connector.running
    connector.stop()
    connector.stop()
    assert not connector.running
