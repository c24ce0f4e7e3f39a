"""A container whose root is not a file system of its own never gets a fanotify mark.

A second private engine runs with ``--storage-driver=vfs``: a container's root there is the
plain directory ``vfs/dir/ID`` on the host's file system, and Docker names no MergedDir. A
filesystem mark on it would be a mark on the host's ``/``: with its listener stopped, every
exec on the host would wait. Shown with an exec sensor in a child process, and with the whole
defender (``--no-watchdog``: the watchdog would kill a stopped defender), each SIGSTOPped while
the host runs a program; an overlay mounted by the test, which the sensor does mark, shows that
a stopped listener does hold the execs it covers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.models.containers
import pytest

from garrison.devengine import EngineConfig, PrivateEngine, ensure_packages
from garrison.devengine.images import BUSYBOX, BUSYBOX_BINARY, cache_dir_from_env, ensure_image
from garrison.runtime import DockerRuntime
from tests.conftest import remove_all
from tests.defender.conftest import DefenderProcess
from tests.support import wait_for

pytestmark = pytest.mark.engine

VFS_ENGINE_DIR = Path("/var/tmp/garrison-vfs-engine")
HOST_EXEC_SECONDS = 10.0  # far above a free /bin/true, on a loaded machine too; a held one hangs
Container = docker.models.containers.Container


@pytest.fixture(scope="module")
def vfs_engine() -> Iterator[PrivateEngine]:
    """A private engine on the vfs storage driver with the busybox image, stopped by pid."""
    ensure_packages()
    config = EngineConfig(state_dir=VFS_ENGINE_DIR, extra_args=("--storage-driver=vfs",))
    engine = PrivateEngine(config)
    try:
        engine.start()
        with contextlib.closing(engine.client()) as client:
            assert client.info()["Driver"] == "vfs"
            ensure_image(client, BUSYBOX, cache_dir_from_env())
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def vfs_container(vfs_engine: PrivateEngine) -> Iterator[Container]:
    with contextlib.closing(vfs_engine.client()) as client:
        container = client.containers.run(BUSYBOX.name, ["sleep", "600"], detach=True)
        try:
            yield container
        finally:
            remove_all([container])


def vfs_root(engine: PrivateEngine, container_id: str) -> str:
    """The directory the vfs driver gave the container as its root (what a runtime would
    name if it reported one), from the engine's layer store."""
    layers = engine.state_dir / "data/image/vfs/layerdb/mounts"
    mount_id = (layers / container_id / "mount-id").read_text().strip()
    return str(engine.state_dir / "data/vfs/dir" / mount_id)


@pytest.fixture
def own_overlay(tmp_path: Path) -> Iterator[Path]:
    """An overlay mounted by the test, holding a static busybox: a file system of its own."""
    dirs = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for path in dirs.values():
        path.mkdir()
    shutil.copy2(BUSYBOX_BINARY, dirs["lower"] / "busybox")
    options = f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, dirs["merged"]], check=True)
    try:
        yield dirs["merged"]
    finally:
        subprocess.run(["umount", "-l", dirs["merged"]], check=True)


CHILD = """
import json, sys
from garrison.errors import NotOwnFilesystem
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import Verdict
from garrison.sensors.exec_sensor import ExecSensor
sensor = ExecSensor(lambda e: Verdict.ALLOW, lambda e: None)
sensor.start()
results = {}
for arg in sys.argv[1:]:
    cid, _, root = arg.partition("=")
    try:
        sensor.watch(ContainerInfo(cid, "c", "", "", merged_dir=root or None))
        results[cid] = "watched"
    except NotOwnFilesystem as exc:
        results[cid] = str(exc)
print(json.dumps({"results": results, "watched": sensor.watched()}), flush=True)
sys.stdin.read()  # until the test closes it or kills this process
"""


def host_exec_seconds() -> float:
    """How long ``/bin/true`` on the host takes, waited for at most HOST_EXEC_SECONDS. In a
    thread: Popen itself waits for its child's exec, which a host mark would hold until the
    listener is continued (``stopped`` does so whatever happens)."""
    began = time.monotonic()
    run = threading.Thread(target=subprocess.run, args=(["/bin/true"],), daemon=True)
    run.start()
    run.join(HOST_EXEC_SECONDS)
    return time.monotonic() - began


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """``pid`` held by SIGSTOP, continued whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_vfs_root_is_refused_and_a_stopped_exec_sensor_holds_no_exec_of_the_host(
    vfs_engine: PrivateEngine, vfs_container: Container, own_overlay: Path
) -> None:
    runtime = DockerRuntime(vfs_engine.base_url)
    try:
        reported = runtime.inspect(vfs_container.id)
    finally:
        runtime.close()
    assert reported.merged_dir is None  # Docker names no MergedDir for vfs
    root = vfs_root(vfs_engine, vfs_container.id)
    assert os.stat(root).st_dev == os.stat("/").st_dev  # a mark there would be the host's
    # The container as Docker reports it, its vfs directory as a runtime might, and an overlay.
    args = [f"{vfs_container.id}=", f"{'v' * 64}={root}", f"{'o' * 64}={own_overlay}"]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    control: subprocess.Popen[bytes] | None = None
    try:
        assert child.stdout is not None
        answer: dict[str, Any] = json.loads(child.stdout.readline())
        results = answer["results"]
        assert results[vfs_container.id] == (
            f"container {vfs_container.id[:12]}: the runtime names no root file system "
            "for it (no MergedDir: not overlay2)"
        )
        assert results["v" * 64] == (
            f"container vvvvvvvvvvvv: {root} is a directory on the host's file system "
            f"(device {os.major(os.stat('/').st_dev)}:{os.minor(os.stat('/').st_dev)}, like /), "
            "not a file system of its own"
        )
        assert results["o" * 64] == "watched"
        assert answer["watched"] == ["o" * 64]
        with stopped(child.pid):
            assert host_exec_seconds() < HOST_EXEC_SECONDS
            assert vfs_container.exec_run(["/bin/true"]).exit_code == 0
            # What the stopped sensor does mark waits: the test would see a host mark. (Popen
            # returns once its child's exec is done: a shell from the host makes that exec.)
            control = subprocess.Popen(["/bin/sh", "-c", f"exec {own_overlay}/busybox true"])
            time.sleep(HOST_EXEC_SECONDS)
            assert control.poll() is None
        child.kill()  # its group closes: the kernel lets the waiting exec through
        assert control.wait(timeout=30) == 0
    finally:
        child.kill()
        child.wait()
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()
        if control is not None and control.poll() is None:
            control.kill()
            control.wait()


@pytest.fixture
def vfs_defender(vfs_engine: PrivateEngine, tmp_path: Path) -> Iterator[DefenderProcess]:
    defender = DefenderProcess(vfs_engine, tmp_path / "data", "4s", args=["--no-watchdog"])
    try:
        yield defender.start()
    finally:
        defender.stop(signal.SIGKILL)


def unwatched(defender: DefenderProcess, container_id: str) -> dict[str, str]:
    """Sensor → why, for each sensor that does not watch the container (status)."""
    sensors: dict[str, dict[str, Any]] = defender.status().get("sensors") or {}
    return {
        name: why
        for name, c in sensors.items()
        if (why := (c.get("unwatched") or {}).get(container_id))
    }


def test_the_defender_marks_no_vfs_container_says_so_and_a_stalled_one_holds_no_host_exec(
    vfs_defender: DefenderProcess, vfs_container: Container
) -> None:
    whys = wait_for(
        "exec and files to give up on the vfs container",
        lambda: unwatched(vfs_defender, vfs_container.id),
    )
    assert set(whys) == {"exec", "files"}  # processes (BPF, every exec) and network watch it
    assert "no root file system" in whys["exec"]
    assert vfs_container.id in vfs_defender.status()["watching"]
    shown = subprocess.run(
        [sys.executable, "-m", "garrison", "status", "--data-dir", str(vfs_defender.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"container {vfs_container.id[:12]} not watched by exec, files: {whys['exec']}" in (
        " ".join(shown.split())
    )
    status = vfs_defender.status()
    assert vfs_defender.proc is not None
    assert status["pid"] == vfs_defender.proc.pid  # no watchdog: the defender itself
    recorded = status["sensors"]["processes"]["extra"]["recorded"]
    with stopped(status["pid"]):
        assert host_exec_seconds() < HOST_EXEC_SECONDS
        assert vfs_container.exec_run(["/bin/true"]).exit_code == 0
    # Its execs reach the defender from the processes sensor (BPF reports every one).
    wait_for(
        "the exec in the vfs container to be recorded",
        lambda: vfs_defender.status()["sensors"]["processes"]["extra"]["recorded"] > recorded,
    )
