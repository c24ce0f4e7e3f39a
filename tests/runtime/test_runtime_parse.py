"""Docker's inspect and event JSON, as captured on this machine, decoded to the contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from garrison.k8s.pods import PodRef, pod_of
from garrison.runtime import RestartPolicy
from garrison.runtime.containerd import pod_labels
from garrison.runtime.docker import event_from_message, info_from_inspect

DATA = Path(__file__).parent / "data"


def inspect_data(name: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads((DATA / name).read_text())
    return data[0]


def messages(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def test_running_container_gives_every_tracked_field():
    data = inspect_data("inspect_running_kubernetes.json")
    info = info_from_inspect(data, digest="busybox@sha256:abc")
    assert info.id == data["Id"]
    assert info.name == "rt-sample"
    assert info.image_name == "garrison-test/busybox:latest"
    assert info.image_id.startswith("sha256:")
    assert info.image_digest == "busybox@sha256:abc"
    assert info.running
    assert info.pid == data["State"]["Pid"] > 0
    assert info.merged_dir is not None
    assert info.merged_dir.endswith("/merged")
    assert info.restart_policy == RestartPolicy("always", 0)
    assert info.hostname == "web-0"
    assert info.entrypoint == ("/bin/sh",)
    assert info.cmd == ("-c", "sleep 300")


def test_kubernetes_labels_name_the_orchestrator_and_namespace():
    info = info_from_inspect(inspect_data("inspect_running_kubernetes.json"))
    assert info.labels["io.kubernetes.pod.name"] == "web-0"
    assert info.orchestrator == "kubernetes"
    assert info.namespace == "shop"


def test_plain_container_has_no_orchestrator_and_policy_no():
    info = info_from_inspect(inspect_data("inspect_running_plain.json"))
    assert info.orchestrator is None
    assert info.restart_policy == RestartPolicy("no", 0)
    assert info.entrypoint == ()
    assert info.cmd == ("sleep", "30")


def test_exited_container_is_not_running_and_has_no_pid():
    info = info_from_inspect(inspect_data("inspect_killed.json"))
    assert not info.running
    assert info.pid == 0
    assert info.name == "rt-sample2"
    assert info.restart_policy == RestartPolicy("on-failure", 3)


def test_empty_restart_policy_name_reads_as_no():
    data = inspect_data("inspect_running_plain.json")
    data["HostConfig"]["RestartPolicy"] = {"Name": "", "MaximumRetryCount": 0}
    assert info_from_inspect(data).restart_policy == RestartPolicy("no", 0)


def test_lifecycle_events_decode_in_order_with_verbs():
    events = [event_from_message(m) for m in messages("events_container_lifecycle.jsonl")]
    assert [e.action for e in events if e] == [
        "create", "start", "exec_create", "exec_start", "exec_die",
        "update", "rename", "kill", "die", "destroy",
    ]  # fmt: skip


def test_exec_event_carries_its_command_and_exec_id():
    raw = messages("events_container_lifecycle.jsonl")[2]
    event = event_from_message(raw)
    assert event is not None
    assert event.action == "exec_create"
    assert event.attributes["command"] == "/bin/sh -c id"
    assert event.attributes["execID"]
    assert event.container_id == raw["Actor"]["ID"]


def test_event_time_keeps_nanoseconds():
    raw = messages("events_container_lifecycle.jsonl")[0]
    event = event_from_message(raw)
    assert event is not None
    assert event.time == raw["timeNano"] / 1e9
    assert int(event.time) == raw["time"]


def test_die_event_carries_exit_code_and_rename_the_old_name():
    events = [event_from_message(m) for m in messages("events_container_lifecycle.jsonl")]
    by_action = {e.action: e for e in events if e}
    assert by_action["die"].attributes["exitCode"] == "137"
    assert by_action["rename"].attributes["oldName"] == "/rt-sample"  # Docker keeps the slash here
    assert by_action["rename"].attributes["name"] == "rt-sample2"


def test_image_events_are_dropped():
    events = [event_from_message(m) for m in messages("events_mixed_types.jsonl")]
    assert events[:2] == [None, None]
    assert [e.action for e in events[2:] if e] == ["create", "attach", "start", "die", "destroy"]


def test_the_other_mounts_are_volumes_tmpfs_and_the_files_docker_mounts():
    data = {
        "Id": "c" * 64,
        "Mounts": [
            {"Type": "bind", "Source": "/srv/x", "Destination": "/data"},
            {"Type": "volume", "Name": "v", "Destination": "/var/lib/app"},
            {"Type": "bind", "Destination": "relative/is/ignored"},
        ],
        "HostConfig": {"Tmpfs": {"/scratch": "exec", "/data": ""}},
        "HostsPath": "/var/lib/docker/containers/c/hosts",
        "ResolvConfPath": "/var/lib/docker/containers/c/resolv.conf",
        "HostnamePath": "",
    }
    info = info_from_inspect(data)
    assert info.mounts == ("/data", "/var/lib/app", "/scratch", "/etc/hosts", "/etc/resolv.conf")
    assert info_from_inspect({"Id": "c" * 64}).mounts == ()


def test_a_cri_containers_annotations_name_its_pod_where_kubelets_labels_do_not() -> None:
    annotations = {
        "io.kubernetes.cri.sandbox-name": "web-0",
        "io.kubernetes.cri.sandbox-namespace": "shop",
        "io.kubernetes.cri.sandbox-uid": "6f1c2d1e-0000-4000-8000-000000000001",
        "io.kubernetes.cri.container-name": "web",
    }
    labels = pod_labels({"io.kubernetes.pod.name": "from-kubelet"}, annotations)
    assert labels == {
        "io.kubernetes.pod.name": "from-kubelet",  # kubelet's label wins
        "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.pod.uid": "6f1c2d1e-0000-4000-8000-000000000001",
        "io.kubernetes.container.name": "web",
    }
    assert pod_of(labels) == PodRef(
        "shop", "from-kubelet", annotations["io.kubernetes.cri.sandbox-uid"]
    )
