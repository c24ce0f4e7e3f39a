"""The watchdog: ``garrison run`` is two processes, a small supervisor and the defender.

A defender that stops answering fanotify permission events holds every exec (and, for open
permissions, every open) of the containers it watches — stopped by a signal, deadlocked, caught
in a GIL-bound loop, starved of memory. The kernel lets every waiting and later event through
once the group's last fd is closed, and a process that is killed closes its fds whatever state
it was in. So the supervisor, which holds no fanotify group and shares no thread, lock or
memory allocator with the defender, reads the defender's heartbeats (:mod:`.heartbeat`) every
``CHECK_SECONDS``; when one has been silent for ``stall_timeout`` it kills the defender with
SIGKILL (the kernel then releases the waiting execs), and starts a new one, which adopts the
running containers again. Waiting execs go on within ``stall_timeout + CHECK_SECONDS`` of the
stall (docs/defender.md). A defender that dies by itself is started again too, after a backoff
that grows while it keeps dying. Each stall or crash becomes an audit that the next defender
stores (the report stays pending here until it says it did) and shows in ``garrison status``.

Under systemd (``NOTIFY_SOCKET`` set) the supervisor says ``READY=1`` once the defender beats,
and ``WATCHDOG=1`` every second, so that systemd restarts the supervisor itself if it hangs.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from garrison.watchdog.heartbeat import ENV_FD, Board, Stall
from garrison.watchdog.release import close_together, take_fanotify_fds

log = logging.getLogger(__name__)

ENV_STATE = "GARRISON_WATCHDOG_STATE"
CHECK_SECONDS = 0.1
PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 30.0  # for a defender asked to stop, before it is killed
EXIT_SECONDS = 5.0  # for a killed defender to exit, before its groups are closed anyway
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
STEADY_SECONDS = 60.0  # a defender that lived this long starts the backoff over
NOTIFY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Incident:
    """A defender the watchdog saw end without being asked to."""

    time: float
    kind: Literal["stall", "crash"]
    pid: int
    detail: str


@dataclass(slots=True)
class WatchdogState:
    """What the supervisor hands each defender it starts (``GARRISON_WATCHDOG_STATE``)."""

    supervisor_pid: int
    stall_timeout: float
    restarts: int = 0
    stalls: int = 0
    crashes: int = 0
    last: Incident | None = None
    pending: list[Incident] = field(default_factory=list)  # not yet stored as audits

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> WatchdogState | None:
        raw = env.get(ENV_STATE)
        if not raw:
            return None
        data: dict[str, Any] = json.loads(raw)
        data["pending"] = [Incident(**i) for i in data.get("pending", [])]
        data["last"] = Incident(**data["last"]) if data.get("last") else None
        return cls(**data)

    def status(self) -> dict[str, Any]:
        """The ``watchdog`` part of the defender's status."""
        return {
            "supervisorPid": self.supervisor_pid,
            "stallTimeout": self.stall_timeout,
            "restarts": self.restarts,
            "stalls": self.stalls,
            "crashes": self.crashes,
            "last": asdict(self.last) if self.last else None,
        }


class Supervisor:
    """Runs ``argv`` (the defender) under the watchdog until asked to stop; ``run`` returns
    the exit status for ``garrison run``."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        stall_timeout: float = 1.0,
        *,
        keep_fds: Sequence[int] = (),
        name: str = "defender",
        on_kill: str = "so the kernel let its waiting events through",
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.argv = list(argv)
        self.keep_fds = tuple(keep_fds)  # handed to every child (the plugin's listening socket)
        self.name = name
        self.on_kill = on_kill  # what killing a stalled child achieved, for its incident
        self.backoff = tuple(backoff) or BACKOFF  # pauses before restarts that keep failing
        self.env = {k: v for k, v in env.items() if k not in (ENV_FD, ENV_STATE, "NOTIFY_SOCKET")}
        self.state = WatchdogState(os.getpid(), stall_timeout)
        self.notify = _Notifier(env.get("NOTIFY_SOCKET"))
        self._stop_signal: int | None = None
        self._failures = 0
        self._stored = 0  # reports the running defender acknowledged

    def run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            while True:
                started = time.monotonic()
                code = self._run_one()
                if code is not None:
                    return code
                if time.monotonic() - started > STEADY_SECONDS:
                    self._failures = 0
                self._pause(self.backoff[min(self._failures, len(self.backoff) - 1)])
                self._failures += 1
                if self._stop_signal is not None:
                    return 0
                self.state.restarts += 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.notify.send("STOPPING=1")

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stop_signal = signum

    def _run_one(self) -> int | None:
        """One defender, from start to end: its exit status when the end was asked for (or
        clean), None when it must be started again."""
        board = Board.create()
        try:
            child = self._spawn(board)
            incident = self._watch(child, board)
        finally:
            board.close()
        if incident is None:
            return child.returncode if child.returncode and child.returncode > 0 else 0
        self.state.pending.append(incident)
        self.state.last = incident
        if incident.kind == "stall":
            self.state.stalls += 1
        else:
            self.state.crashes += 1
        log.error(
            "watchdog: %s pid %d %s; starting another", self.name, incident.pid, incident.detail
        )
        return None

    def _spawn(self, board: Board) -> subprocess.Popen[bytes]:
        self._stored = 0
        env = {**self.env, ENV_FD: str(board.fd), ENV_STATE: self.state.to_env()}
        return subprocess.Popen(self.argv, env=env, pass_fds=(board.fd, *self.keep_fds))

    def _watch(self, child: subprocess.Popen[bytes], board: Board) -> Incident | None:
        """Until the defender ends: None when it was asked to (or ended cleanly)."""
        forwarded = False
        deadline = float("inf")
        next_notify = 0.0
        while (code := child.poll()) is None:
            if self._stop_signal is not None and not forwarded:
                child.send_signal(self._stop_signal)
                forwarded, deadline = True, time.monotonic() + GRACE_SECONDS
            stalls = board.stalled(self.state.stall_timeout)
            if stalls or time.monotonic() > deadline:
                return self._kill(child, stalls)
            self._acknowledged(board)
            if time.monotonic() >= next_notify:
                self.notify.send("WATCHDOG=1" if not board.beating() else "READY=1\nWATCHDOG=1")
                next_notify = time.monotonic() + NOTIFY_SECONDS
            time.sleep(CHECK_SECONDS)
        self._acknowledged(board)
        if forwarded or code == 0:
            return None
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        return Incident(time.time(), "crash", child.pid, how)

    def _kill(self, child: subprocess.Popen[bytes], stalls: list[Stall]) -> Incident | None:
        for stall in stalls:
            log.error(
                "watchdog: %s pid %d: %s silent for %.1f s; killing it",
                self.name, child.pid, stall.name, stall.silent,
            )  # fmt: skip
        held = take_fanotify_fds(child.pid)  # the groups outlive the defender in these
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(EXIT_SECONDS)
        if not close_together(held):
            log.error("watchdog: a fanotify group of pid %d is still closing", child.pid)
        child.wait()
        if not stalls:  # asked to stop, and it did not within the grace period
            log.warning(
                "watchdog: %s pid %d killed after %.0f s", self.name, child.pid, GRACE_SECONDS
            )
            return None
        worst = max(stalls, key=lambda s: s.silent)
        detail = (
            f"stopped answering ({worst.name} silent for {worst.silent:.1f} s, bound "
            f"{worst.bound:.1f} s): killed, {self.on_kill}"
        )
        return Incident(time.time(), "stall", child.pid, detail)

    def _acknowledged(self, board: Board) -> None:
        """Drop the pending reports the defender says it stored (its count grows from 0)."""
        stored = board.acknowledged()
        if stored > self._stored:
            del self.state.pending[: stored - self._stored]
            self._stored = stored

    def _pause(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while self._stop_signal is None and time.monotonic() < end:
            time.sleep(min(CHECK_SECONDS, max(0.0, end - time.monotonic())))


def die_with_supervisor(state: WatchdogState) -> None:
    """A supervised child ends with its watchdog: left alone it would hold what it serves with
    nobody to end a stall (PR_SET_PDEATHSIG; the parent may be gone before it was set)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != state.supervisor_pid:
        raise SystemExit("garrison: the watchdog that started this process is gone")


class _Notifier:
    """sd_notify(3) without libsystemd: one datagram per message to ``NOTIFY_SOCKET``."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        if address and address.startswith("@"):
            self.address = "\0" + address[1:]  # an abstract socket

    def send(self, message: str) -> None:
        if not self.address:
            return
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
        ):
            sock.sendto(message.encode(), self.address)
