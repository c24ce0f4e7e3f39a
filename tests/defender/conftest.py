"""A real ``garrison run`` process against the session's private engine, and its store."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from garrison.console import Console
from garrison.devengine import PrivateEngine
from tests.support import wait_for


class DefenderProcess:
    """``garrison run`` in a child process, stopped by its pid."""

    def __init__(
        self,
        engine: PrivateEngine,
        data_dir: Path,
        learning: str,
        args: Sequence[str] = (),
        wrap: Sequence[str] = (),
        *,
        log: Path | None = None,
    ) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.learning = learning
        self.args = tuple(args)
        self.wrap = tuple(wrap)  # a command that runs garrison (its argv follows)
        self.log = log or data_dir / "defender.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DefenderProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            *self.wrap,
            sys.executable, "-m", "garrison", "run",
            "--docker-host", self.engine.base_url,
            "--data-dir", str(self.data_dir),
            "--learning-period", self.learning,
            "--network-interval", "0.2s",
            *self.console_off(),
            *self.args,
        ]  # fmt: skip
        env = {**os.environ, "GARRISON_LOG_LEVEL": "INFO", "GARRISON_STATUS_INTERVAL": "0.2"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for("the defender's first status", self._reported_since_start)
            self._check_process_events()
        except BaseException:
            self.stop(signal.SIGKILL)  # never left running after a failed start
            raise
        return self

    def console_off(self) -> list[str]:
        """No console unless the test asks for one: ``garrison run`` serves it on
        127.0.0.1:8080 by default, which two defenders of one session would share."""
        return [] if "--console-address" in self.args else ["--console-address", "off"]

    def _reported_since_start(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"garrison run exited {self.proc.returncode}:\n{self.log.read_text()}")
        status = self.status()
        return self.proc.pid in self.pids(status) and status.get("containers") is not None

    @staticmethod
    def pids(status: dict[str, Any]) -> set[int]:
        """The process ``garrison run`` started as: the watchdog, or the defender itself."""
        watchdog = status.get("watchdog") or {}
        return {status.get("pid", 0), watchdog.get("supervisorPid", 0)} - {0}

    def _check_process_events(self) -> None:
        """Unless a test asks for the proc connector, the defender runs on BPF: a fallback
        would test the wrong source and hide a host that cannot load the programs."""
        if "proc_connector" in self.args:
            return
        processes = self.status()["sensors"]["processes"]
        assert processes["source"] == "bpf", processes.get("reason")

    def console_call(self, fn: Callable[[Console], Any]) -> Any:
        with Console.open(self.data_dir) as console:
            return fn(console)

    def status(self) -> dict[str, Any]:
        return dict(self.console_call(lambda c: c.status()).get("defender") or {})

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        return code


@pytest.fixture
def start_defender(
    engine: PrivateEngine, tmp_path: Path
) -> Iterator[Callable[..., DefenderProcess]]:
    started: list[DefenderProcess] = []

    def start(
        learning: str = "4s",
        data_dir: Path | None = None,
        args: Sequence[str] = (),
        wrap: Sequence[str] = (),
        log: Path | None = None,
    ) -> DefenderProcess:
        proc = DefenderProcess(engine, data_dir or tmp_path / "data", learning, args, wrap, log=log)
        proc.start()
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop(signal.SIGKILL)


@pytest.fixture
def debian(defender: DefenderProcess, run_container: Any) -> Callable[[str], Any]:
    """Start Debian containers that the test module's own ``defender`` fixture watches."""
    # The support module imports this one: import it here, not at the top.
    from tests.defender.detections_support import DEBIAN, watched  # noqa: PLC0415

    def start(name: str) -> Any:
        return watched(defender, run_container(DEBIAN, ["sleep", "3600"], name=name))

    return start
