"""Which runtime a defender defends (``--runtime docker|containerd|auto``), asked of a real
private containerd and of sockets where nothing listens."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.config import load_settings
from garrison.errors import ConfigError, RuntimeUnavailable
from garrison.runtime.choose import RuntimeChoice, choose_runtime, named_runtime, runtime_for
from garrison.runtime.containerd import ContainerdRuntime
from garrison.runtime.docker import DockerRuntime
from tests.containerd_support import PrivateContainerd

NOWHERE_DOCKER = "unix:///nonexistent/docker.sock"
NOWHERE_CONTAINERD = "/nonexistent/containerd.sock"
DEFAULT_DOCKER_SOCKET = Path("/var/run/docker.sock")


@pytest.fixture(scope="module")
def containerd() -> Iterator[PrivateContainerd]:
    for tool in ("containerd", "ctr"):
        assert shutil.which(tool), f"{tool} is not installed (Debian's containerd package)"
    daemon = PrivateContainerd.create()
    try:
        yield daemon.start()
    finally:
        daemon.stop()
        daemon.remove()


def test_containerd_named_is_taken_without_asking_docker() -> None:
    choice = named_runtime("containerd", NOWHERE_DOCKER, None, "k8s.io")
    assert choice == RuntimeChoice(
        "containerd", containerd_address="/run/containerd/containerd.sock", namespace="k8s.io"
    )


@pytest.mark.parametrize("kind", ["docker", "auto"])
def test_a_docker_engine_named_is_docker_for_docker_and_auto(kind: str) -> None:
    choice = named_runtime(kind, "unix:///x.sock", "/y.sock")  # type: ignore[arg-type]
    assert choice == RuntimeChoice("docker", docker_host="unix:///x.sock")


def test_auto_with_no_engine_named_is_decided_only_by_asking() -> None:
    assert named_runtime("auto") is None


def test_a_named_runtime_that_does_not_answer_is_one_line_saying_how_to_start_it() -> None:
    with pytest.raises(RuntimeUnavailable) as docker:
        choose_runtime("docker", NOWHERE_DOCKER)
    assert str(docker.value).startswith(f"no Docker engine answers at {NOWHERE_DOCKER}; ")
    with pytest.raises(RuntimeUnavailable) as containerd:
        choose_runtime("containerd", None, NOWHERE_CONTAINERD)
    assert str(containerd.value).startswith(f"no containerd answers at {NOWHERE_CONTAINERD} ")
    assert "\n" not in str(docker.value) + str(containerd.value)


def test_containerd_named_and_answering_is_chosen(containerd: PrivateContainerd) -> None:
    choice = choose_runtime("containerd", NOWHERE_DOCKER, containerd.address, "garrison-test")
    assert (choice.kind, choice.containerd_address) == ("containerd", containerd.address)
    runtime = choice.open()
    assert isinstance(runtime, ContainerdRuntime)
    assert runtime.namespace == "garrison-test"
    assert runtime.ping()


def test_auto_takes_containerd_when_no_docker_engine_answers(
    containerd: PrivateContainerd,
) -> None:
    if DEFAULT_DOCKER_SOCKET.exists():
        pytest.skip(f"{DEFAULT_DOCKER_SOCKET} exists here: Docker may answer first")
    choice = choose_runtime("auto", None, containerd.address, "garrison-test")
    assert choice == RuntimeChoice(
        "containerd", containerd_address=containerd.address, namespace="garrison-test"
    )
    assert "containerd at" in choice.describe()


def test_auto_with_nothing_answering_names_both_sockets() -> None:
    if DEFAULT_DOCKER_SOCKET.exists():
        pytest.skip(f"{DEFAULT_DOCKER_SOCKET} exists here: Docker may answer")
    with pytest.raises(RuntimeUnavailable) as raised:
        choose_runtime("auto", None, NOWHERE_CONTAINERD)
    message = str(raised.value)
    assert message.startswith(
        f"no Docker engine answers at unix://{DEFAULT_DOCKER_SOCKET}, nor containerd at "
        f"{NOWHERE_CONTAINERD}; "
    ), message


def test_a_command_with_nothing_answering_gets_docker_and_no_error_until_it_asks() -> None:
    if DEFAULT_DOCKER_SOCKET.exists():
        pytest.skip(f"{DEFAULT_DOCKER_SOCKET} exists here: Docker may answer")
    runtime = runtime_for("auto", None, NOWHERE_CONTAINERD)
    try:
        assert isinstance(runtime, DockerRuntime)
        assert not runtime.ping()
    finally:
        runtime.close()


@pytest.mark.parametrize("namespace", ["", "-lead", "a/b", "x" * 77, "Ünï"])
def test_a_namespace_containerd_refuses_is_a_bad_setting(namespace: str) -> None:
    with pytest.raises(ConfigError, match="containerd_namespace"):
        load_settings(None, {"containerd_namespace": namespace}, env={})


def test_runtime_settings_come_from_the_environment() -> None:
    env = {
        "GARRISON_RUNTIME": "containerd",
        "GARRISON_CONTAINERD_ADDRESS": "/c.sock",
        "GARRISON_CONTAINERD_NAMESPACE": "k8s.io",
        "GARRISON_BLOCK_DELETES_POD": "true",
    }
    settings = load_settings(None, {}, env=env)
    assert (settings.runtime, settings.containerd_address) == ("containerd", "/c.sock")
    assert (settings.containerd_namespace, settings.block_deletes_pod) == ("k8s.io", True)
    with pytest.raises(ConfigError, match="runtime"):
        load_settings(None, {"runtime": "podman"}, env={})
