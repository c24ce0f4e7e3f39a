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

import docker
import pytest

from garrison.console import Console
from garrison.devengine import PrivateEngine
from garrison.runtime.base import ContainerRuntime
from garrison.runtime.containerd import ContainerdRuntime
from garrison.runtime.docker import DockerRuntime
from tests.containerd_support import PrivateContainerd, running_containerd
from tests.ctr_container import CtrContainer, import_from_engine, run_ctr
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
        runtime_args: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        # How garrison run is told its runtime: the session engine unless these say else.
        self.runtime_args = tuple(runtime_args) or ("--docker-host", engine.base_url)
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
            *self.runtime_args,
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


CONTAINERD_NS = "garrison-enf"
# The same test on the session's Docker engine and on a private containerd (ctr containers).
BOTH_RUNTIMES = pytest.mark.parametrize("defended", ["docker", "containerd"], indirect=True)


@pytest.fixture
def defended(request: pytest.FixtureRequest) -> str:
    """The runtime the test's defender defends: "docker" (the session engine) unless the
    test is parametrised with ``indirect=["defended"]`` (then also "containerd")."""
    return str(getattr(request, "param", "docker"))


@pytest.fixture(scope="session")
def containerd_daemon(
    docker_client: docker.DockerClient, test_images: dict[str, str]
) -> Iterator[PrivateContainerd]:
    """The session's private containerd for defender tests, with the engine's test images
    under the same names in CONTAINERD_NS; stopped by its pid at the end."""
    images = sorted(test_images)

    def fill(daemon: PrivateContainerd) -> None:
        import_from_engine(docker_client, daemon, CONTAINERD_NS, images)

    with running_containerd(CONTAINERD_NS, fill) as daemon:
        yield daemon


@pytest.fixture
def run_container(
    run_container: Callable[..., Any], defended: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """The session engine's ``run_container``, or for a containerd test the same call making
    ctr containers (``tests/ctr_container.py``); each removed at the end."""
    if defended == "docker":
        yield run_container
        return
    daemon: PrivateContainerd = request.getfixturevalue("containerd_daemon")
    made: list[CtrContainer] = []

    def run(image: str, command: Any = None, **kwargs: Any) -> CtrContainer:
        container = run_ctr(daemon, CONTAINERD_NS, image, command, **kwargs)
        made.append(container)
        return container

    try:
        yield run
    finally:
        for container in made:
            container.remove()


@pytest.fixture
def defended_runtime(
    engine: PrivateEngine, defended: str, request: pytest.FixtureRequest
) -> Iterator[ContainerRuntime]:
    """Garrison's own client of the runtime the test's defender defends."""
    if defended == "docker":
        runtime: ContainerRuntime = DockerRuntime(engine.base_url)
    else:
        daemon: PrivateContainerd = request.getfixturevalue("containerd_daemon")
        runtime = ContainerdRuntime(daemon.address, CONTAINERD_NS)
    try:
        yield runtime
    finally:
        runtime.close()


def runtime_args(defended: str, request: pytest.FixtureRequest) -> list[str]:
    """garrison run's options naming the runtime ``defended`` ([] for the session engine)."""
    if defended == "docker":
        return []
    daemon: PrivateContainerd = request.getfixturevalue("containerd_daemon")
    return ["--runtime", "containerd", "--containerd-address", daemon.address,
            "--containerd-namespace", CONTAINERD_NS]  # fmt: skip


@pytest.fixture
def start_defender(
    engine: PrivateEngine, tmp_path: Path, defended: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., DefenderProcess]]:
    started: list[DefenderProcess] = []
    runtime = runtime_args(defended, request)

    def start(
        learning: str = "4s",
        data_dir: Path | None = None,
        args: Sequence[str] = (),
        wrap: Sequence[str] = (),
        log: Path | None = None,
    ) -> DefenderProcess:
        proc = DefenderProcess(
            engine, data_dir or tmp_path / "data", learning, args, wrap, log=log,
            runtime_args=runtime,
        )  # fmt: skip
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
