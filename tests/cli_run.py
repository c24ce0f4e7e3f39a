"""Run the real ``garrison`` command as a child process and measure that child alone.

A process's peak resident set (``ru_maxrss``) outlives ``exec``: a child that pytest itself
spawned (vfork) starts with pytest's own peak. So a small launcher forks the command and
reports ``os.wait4``'s figures for it: a forked child starts with its parent's current
resident set, and the launcher's is a few MiB.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

GARRISON = Path(sys.executable).with_name("garrison")
TIMEOUT = 300.0  # a child still running then is killed: the test then fails on its status
PEAK_LIMIT_MIB = 200.0  # what a refused input may cost, at most
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as report:
    json.dump([code, usage.ru_maxrss, usage.ru_utime + usage.ru_stime], report)
"""


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    peak_mib: float  # the command's peak resident set
    seconds: float  # its CPU time, user and system

    @property
    def lines(self) -> list[str]:
        """Every line the command printed, stdout then stderr."""
        return (self.out + self.err).splitlines()


def garrison(*args: str | Path) -> Ran:
    command = [str(GARRISON)] if GARRISON.exists() else [sys.executable, "-m", "garrison"]
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "usage.json"
        out, err = Path(scratch) / "out", Path(scratch) / "err"
        launch = [sys.executable, "-S", "-c", LAUNCHER, str(report), *command, *map(str, args)]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            _run(launch, stdout, stderr, env)
        code, maxrss_kib, seconds = json.loads(report.read_text())
        return Ran(code, _text(out), _text(err), maxrss_kib / 1024, seconds)


def _run(launch: list[str], stdout: object, stderr: object, env: dict[str, str]) -> None:
    child = subprocess.Popen(launch, stdout=stdout, stderr=stderr, env=env, start_new_session=True)
    timer = threading.Timer(TIMEOUT, os.killpg, (child.pid, signal.SIGKILL))
    timer.start()
    try:
        child.wait()
    finally:
        timer.cancel()


def _text(file: Path) -> str:
    return file.read_bytes().decode("utf-8", "replace")


def private_dir(path: Path) -> Path:
    """A data directory as Garrison wants it (owner-only), so that nothing is said about it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def assert_refused_in_one_line(ran: Ran, *needles: str) -> str:
    """Exit status 1, exactly one line (the reason, holding each needle), no traceback, and a
    bounded peak memory. Returns the line."""
    assert ran.code == 1, ran
    assert len(ran.lines) == 1, ran
    assert "Traceback" not in ran.out + ran.err
    line = ran.lines[0]
    assert line.startswith("garrison: "), line
    for needle in needles:
        assert needle in line, line
    assert ran.peak_mib < PEAK_LIMIT_MIB, f"peak {ran.peak_mib:.0f} MiB: {line}"
    return line
