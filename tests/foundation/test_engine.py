"""The foundation: a private Docker engine and real test images, leaving the host alone."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from garrison.devengine import BUSYBOX, EngineConfig, PrivateEngine, proctree
from garrison.devengine.images import cache_dir_from_env, ensure_image
from garrison.devengine.packages import ENGINE_PACKAGES, missing_packages

pytestmark = pytest.mark.engine

HOST_DOCKER_PATHS = (Path("/var/lib/docker"), Path("/var/run/docker.sock"))


def host_docker_state() -> dict[str, tuple[int, int] | None]:
    """Existence, inode and mtime of the host's own Docker paths."""
    state: dict[str, tuple[int, int] | None] = {}
    for path in HOST_DOCKER_PATHS:
        try:
            st = path.lstat()
        except FileNotFoundError:
            state[str(path)] = None
        else:
            state[str(path)] = (st.st_ino, st.st_mtime_ns)
    return state


def exec_output(container: docker.models.containers.Container, cmd: list[str]) -> str:
    code, output = container.exec_run(cmd)
    assert code == 0, output
    return output.decode()


def test_engine_packages_are_installed(engine: PrivateEngine) -> None:
    assert missing_packages(ENGINE_PACKAGES) == []


def test_busybox_image_runs_applets(run_container) -> None:
    container = run_container("garrison-test/busybox:latest", ["sleep", "60"])
    assert exec_output(container, ["/bin/sh", "-c", "echo hello from $(id -un)"]) == (
        "hello from root\n"
    )
    assert "nc" in exec_output(container, ["/bin/busybox", "--list"]).split()


def test_debian_image_has_a_real_dpkg_database_and_tools(run_container) -> None:
    container = run_container("garrison-test/debian:12", ["sleep", "60"])
    packages = exec_output(container, ["dpkg-query", "-W", "-f", "${Package}\n"]).split()
    assert {"dpkg", "netcat-openbsd", "procps", "python3-minimal"} <= set(packages)
    assert exec_output(container, ["cat", "/etc/debian_version"]).startswith("12.")
    assert exec_output(container, ["python3", "-c", "print(6 * 7)"]) == "42\n"


def test_nginx_image_answers_http_on_its_own_loopback(run_container) -> None:
    container = run_container("garrison-test/nginx:latest")
    status = ""
    for _ in range(50):  # nginx needs a moment to bind; no timing is asserted
        code, out = container.exec_run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:80/"]
        )
        status = out.decode()
        if code == 0:
            break
        time.sleep(0.1)
    assert status == "200"
    assert "nginx" in exec_output(container, ["ps", "-eo", "comm"])


def test_containers_have_only_a_loopback_interface(run_container) -> None:
    container = run_container("garrison-test/busybox:latest", ["sleep", "60"])
    table = exec_output(container, ["/bin/cat", "/proc/net/dev"]).splitlines()[2:]
    assert [line.split(":")[0].strip() for line in table] == ["lo"]


def test_second_image_ensure_is_a_cache_hit(docker_client, test_images) -> None:
    before = {image.id for image in docker_client.images.list()}
    again = ensure_image(docker_client, BUSYBOX, cache_dir_from_env())
    assert again == test_images[BUSYBOX.name]
    assert {image.id for image in docker_client.images.list()} == before


@pytest.fixture
def short_state_dir() -> Iterator[Path]:
    # Unix socket paths must stay under 108 bytes: pytest's tmp_path can be too long.
    with tempfile.TemporaryDirectory(prefix="ge-", dir="/var/tmp") as tmp:
        yield Path(tmp)


def test_private_engine_stops_by_pid_and_leaves_the_host_alone(
    engine: PrivateEngine, short_state_dir: Path
) -> None:
    host_before = host_docker_state()
    private = PrivateEngine(EngineConfig(state_dir=short_state_dir)).start()
    try:
        assert not private.reused
        client = private.client()
        ensure_image(client, BUSYBOX, cache_dir_from_env())
        container = client.containers.run(BUSYBOX.name, ["sleep", "600"], detach=True)
        container.reload()
        container_pid = container.attrs["State"]["Pid"]
        owned = private.owned_pids()
        client.close()
        assert private.pid() in owned
        assert proctree.alive(container_pid)
    finally:
        gone = private.stop()
    assert gone, "the engine reported no processes"
    assert proctree.alive_of(gone | {container_pid}) == set()
    assert private.pid() is None
    assert host_docker_state() == host_before


def test_running_engine_is_reused_when_asked(engine: PrivateEngine) -> None:
    again = PrivateEngine(EngineConfig(state_dir=engine.state_dir, keep=True)).start()
    assert again.reused
    assert again.pid() == engine.pid()
