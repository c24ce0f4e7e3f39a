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
from tests.support import wait_for

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
    wait_for("the exited one gone", lambda: exited.id not in running_ids(docker_runtime))
    assert running.id in running_ids(docker_runtime)


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
            for event in stream:
                seen.append(event)
        except BaseException as exc:  # reported below: a reader must end without error
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        container = sleeper(run_container)
        container.exec_run(["/bin/true"])
        container.kill()
        container.wait()
        # dockerd wakes waiters before it logs "die": wait for the event itself.
        assert wait_for("the die event", lambda: "die" in actions_of(seen, container.id))
    finally:
        stream.close()
        reader.join(timeout=60)
    assert not reader.is_alive()
    assert errors == []
    mine = actions_of(seen, container.id)
    assert mine[:2] == ["create", "start"]
    assert {"exec_create", "exec_start", "kill", "die"} <= set(mine)


def actions_of(events: list[RuntimeEvent], container_id: str) -> list[str]:
    return [e.action for e in list(events) if e.container_id == container_id]


def running_ids(runtime: DockerRuntime) -> set[str]:
    return {info.id for info in runtime.list_running()}
