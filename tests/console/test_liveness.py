"""Whether the defender runs, from its last report and its pid (pure: the pid check is given)."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from garrison.console.liveness import liveness, pid_alive

NOW = 1_000_000.0


def report(**changes: Any) -> dict[str, Any]:
    return {
        "hostname": "h1",
        "pid": 4242,
        "startedAt": NOW - 100,
        "updatedAt": NOW - 1,
        "statusInterval": 2.0,
        "state": "running",
        **changes,
    }


def alive_pids(*pids: int) -> Any:
    return lambda pid, _started: pid in pids


def test_no_report_is_not_running() -> None:
    assert liveness(None, NOW).state == "none"
    assert not liveness({}, NOW).running


def test_a_fresh_report_of_a_living_pid_is_running() -> None:
    live = liveness(report(), NOW, alive_pids(4242), "h1")
    assert (live.state, live.running) == ("running", True)


def test_a_clean_stop_is_stopped_whatever_the_pid() -> None:
    live = liveness(report(state="stopped"), NOW, alive_pids(4242), "h1")
    assert live.state == "stopped"
    assert "stopped cleanly" in live.why


def test_a_dead_pid_is_gone_at_once_even_with_a_fresh_report() -> None:
    live = liveness(report(), NOW, alive_pids(), "h1")
    assert live.state == "gone"
    assert "pid 4242 gone" in live.why


def test_a_dead_defender_whose_watchdog_lives_is_gone_and_being_restarted() -> None:
    doc = report(watchdog={"supervisorPid": 77})
    live = liveness(doc, NOW, alive_pids(77), "h1")
    assert live.state == "gone"
    assert "watchdog (pid 77) is starting another" in live.why


def test_a_living_pid_that_stopped_reporting_is_silent() -> None:
    live = liveness(report(updatedAt=NOW - 60), NOW, alive_pids(4242), "h1")
    assert live.state == "silent"


def test_the_pid_of_another_host_is_not_looked_up() -> None:
    live = liveness(report(hostname="elsewhere"), NOW, alive_pids(), "h1")
    assert live.state == "running"


def test_pid_alive_reads_proc_and_sees_a_reused_pid() -> None:
    assert pid_alive(os.getpid(), time.time())  # started (just) before its first report
    assert pid_alive(os.getpid(), 0.0)
    # A defender that reported it started an hour ago is not this process: its pid was reused.
    assert not pid_alive(os.getpid(), time.time() - 3600)
    child = subprocess.Popen(["true"])
    child.wait()
    assert not pid_alive(child.pid, 0.0)
