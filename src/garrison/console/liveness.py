"""Is the defender running? Read from its last status report and, on its own host, from its pid.

A report alone cannot tell a defender that stopped from one that is slow: a clean stop is in
the last report (``state: stopped``), and a pid that is gone — or now belongs to a process
started after the defender, the pid reused — says at once that it died. Only when the pid lives
and the reports stopped is it *silent*: stalled, or cut off from the store.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

STALE_SECONDS = 15.0

State = Literal["running", "stopped", "gone", "silent", "none"]


@dataclass(frozen=True, slots=True)
class Liveness:
    state: State
    why: str

    @property
    def running(self) -> bool:
        return self.state == "running"

    def to_json(self) -> dict[str, Any]:
        return {"running": self.running, **asdict(self)}


def liveness(
    report: Mapping[str, Any] | None,
    now: float | None = None,
    alive: Callable[[int, float], bool] | None = None,
    hostname: str | None = None,
) -> Liveness:
    """The defender's state from its last ``report``; ``alive(pid, started_at)`` is asked
    only for a defender of this host (``hostname``)."""
    if not report:
        return Liveness("none", "no defender has reported yet")
    now = time.time() if now is None else now
    last = f"last report {now - float(report.get('updatedAt', 0)):.0f} s ago"
    pid = int(report.get("pid") or 0)
    if report.get("state") == "stopped":
        return Liveness("stopped", f"stopped cleanly (pid {pid}); {last}")
    here = report.get("hostname") == (hostname or socket.gethostname())
    if here and pid and not (alive or pid_alive)(pid, float(report.get("startedAt", 0))):
        return Liveness("gone", f"pid {pid} gone; {last}{_watchdog_note(report, alive)}")
    stale = max(STALE_SECONDS, 3 * float(report.get("statusInterval", 0)))
    if now - float(report.get("updatedAt", 0)) > stale:
        return Liveness("silent", f"pid {pid} has not reported for {stale:.0f} s; {last}")
    return Liveness("running", f"pid {pid}; {last}")


def _watchdog_note(report: Mapping[str, Any], alive: Callable[[int, float], bool] | None) -> str:
    watchdog = report.get("watchdog") or {}
    supervisor = int(watchdog.get("supervisorPid") or 0)
    if supervisor and (alive or pid_alive)(supervisor, 0.0):
        return f"; its watchdog (pid {supervisor}) is starting another"
    return ""


def pid_alive(pid: int, started_at: float) -> bool:
    """Does ``pid`` live, as the process that started at ``started_at`` (epoch seconds; 0:
    any)? A process that started more than a few seconds later holds a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] == b"Z":  # a zombie: dead, not yet reaped
        return False
    if not started_at:
        return True
    return _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK") <= started_at + 5.0


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0
