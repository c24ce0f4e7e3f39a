"""DockerRuntime against the real private engine: what it reads and what it changes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import docker
import pytest

from garrison.errors import ContainerGone, RuntimeUnavailable
from garrison.runtime import DockerRuntime, RestartPolicy, RuntimeEvent, RuntimeRefused

pytestmark = pytest.mark.engine
BUSYBOX = "garrison-test/busybox:latest"


def sleeper(run_container: Any, **kwargs: Any) -> docker.models.containers.Container:
    return run_container(BUSYBOX, ["sleep", "600"], **kwargs)


def test_ping_answers_on_the_engine_and_not_on_a_missing_socket(docker_runtime, tmp_path):
    assert docker_runtime.ping()
    nowhere = DockerRuntime(f"unix://{tmp_path}/none.sock", timeout=5)
    assert not nowhere.ping()
    with pytest.raises(RuntimeUnavailable):
        nowhere.list_running()


def test_inspect_reads_what_the_defender_needs(docker_runtime, run_container):
    container = sleeper(run_container, name="rt-inspect", hostname="box1")
    info = docker_runtime.inspect(container.id)
    assert (info.id, info.name, info.hostname) == (container.id, "rt-inspect", "box1")
    assert info.image_name == BUSYBOX
    assert info.image_id == container.image.id
    assert info.image_digest is None  # imported locally: no registry digest
    assert info.running
    assert os.readlink(f"/proc/{info.pid}/exe").endswith("busybox")
    assert info.merged_dir is not None
    assert Path(info.merged_dir, "bin/busybox").exists()
    assert info.cmd == ("sleep", "600")
    assert info.restart_policy == RestartPolicy("no", 0)


def test_inspect_of_a_removed_container_raises_container_gone(docker_runtime, run_container):
    container = sleeper(run_container)
    container.remove(force=True)
    with pytest.raises(ContainerGone) as caught:
        docker_runtime.inspect(container.id)
    assert caught.value.container_id == container.id


def test_list_running_has_running_containers_only(docker_runtime, run_container):
    running = sleeper(run_container)
    exited = run_container(BUSYBOX, ["true"])
    exited.wait()
    ids = {info.id for info in docker_runtime.list_running()}
    assert running.id in ids
    assert exited.id not in ids


def test_kubernetes_labels_report_kubernetes(docker_runtime, run_container):
    labels = {"io.kubernetes.pod.name": "web-0", "io.kubernetes.pod.namespace": "shop"}
    container = sleeper(run_container, labels=labels)
    info = docker_runtime.inspect(container.id)
    assert info.orchestrator == "kubernetes"
    assert info.namespace == "shop"


def test_set_restart_policy_changes_the_live_container(docker_runtime, run_container):
    container = sleeper(run_container)
    docker_runtime.set_restart_policy(container.id, RestartPolicy("on-failure", 3))
    assert docker_runtime.inspect(container.id).restart_policy == RestartPolicy("on-failure", 3)
    docker_runtime.set_restart_policy(container.id, RestartPolicy("no"))
    container.reload()
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] in {"no", ""}


def test_restart_policy_of_an_auto_remove_container_is_refused(docker_runtime, run_container):
    container = sleeper(run_container, auto_remove=True)
    with pytest.raises(RuntimeRefused):
        docker_runtime.set_restart_policy(container.id, RestartPolicy("always"))


def test_kill_stops_the_container(docker_runtime, run_container):
    container = sleeper(run_container)
    docker_runtime.kill(container.id)
    assert container.wait()["StatusCode"] == 137  # 128 + SIGKILL
    assert not docker_runtime.inspect(container.id).running


def test_stop_then_start_gives_a_new_first_process(docker_runtime, run_container):
    container = sleeper(run_container)
    first = docker_runtime.inspect(container.id).pid
    docker_runtime.stop(container.id, timeout=0)
    assert docker_runtime.inspect(container.id).pid == 0
    docker_runtime.start(container.id)
    info = docker_runtime.inspect(container.id)
    assert info.running
    assert info.pid not in {0, first}


def test_kill_of_a_missing_container_raises_container_gone(docker_runtime):
    with pytest.raises(ContainerGone):
        docker_runtime.kill("0" * 64)


def test_events_stream_sees_a_start_and_ends_quietly_on_close(docker_runtime, run_container):
    stream = docker_runtime.events()
    seen: list[RuntimeEvent] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            seen.extend(stream)
        except BaseException as exc:  # reported below: a reader must end without error
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        container = sleeper(run_container)
        container.exec_run(["/bin/true"])
        container.kill()
        container.wait()
    finally:
        stream.close()
        reader.join(timeout=60)
    assert not reader.is_alive()
    assert errors == []
    mine = [e.action for e in seen if e.container_id == container.id]
    assert mine[:2] == ["create", "start"]
    assert {"exec_create", "exec_start", "kill", "die"} <= set(mine)
