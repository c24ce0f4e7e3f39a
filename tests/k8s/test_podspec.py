"""A pod's container read as the compliance checks read a Docker container: each field of the
pod spec fails the check that ``docker create`` with the same setting fails, a hardened
container fails none, and the checks a pod spec cannot express are never run on pods."""

from __future__ import annotations

from garrison.k8s._podspec import POD_CHECKS, check_pod_container
from garrison.scan.compliance import CATALOG
from tests.k8s.reviews import object_errors, pod_review

EVERYTHING_WRONG = {
    "name": "agent",
    "image": "agent:1",
    "ports": [{"containerPort": 80, "hostPort": 80, "protocol": "TCP"}],
    "securityContext": {
        "privileged": True,
        "capabilities": {"add": ["NET_ADMIN", "CHOWN"]},
        "seccompProfile": {"type": "Unconfined"},
    },
    "volumeMounts": [
        {"name": "docker", "mountPath": "/var/run/docker.sock"},
        {"name": "etc", "mountPath": "/host/etc", "mountPropagation": "Bidirectional"},
    ],
}
POD_WRONG = {
    "hostNetwork": True,
    "hostPID": True,
    "hostIPC": True,
    "volumes": [
        {"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
        {"name": "etc", "hostPath": {"path": "/etc"}},
    ],
}
APPARMOR = {"container.apparmor.security.beta.kubernetes.io/agent": "unconfined"}


def test_each_pod_setting_fails_the_docker_check_of_the_same_setting() -> None:
    pod = pod_review()["request"]["object"]
    pod["spec"] = {**POD_WRONG, "containers": [EVERYTHING_WRONG]}
    assert object_errors(pod) == []

    issues = check_pod_container(pod["spec"], EVERYTHING_WRONG, APPARMOR)

    assert [i.check_id for i in issues] == [
        "GCIS-5.1", "GCIS-5.3", "GCIS-5.4", "GCIS-5.5", "GCIS-5.7", "GCIS-5.9", "GCIS-5.10",
        "GCIS-5.12", "GCIS-5.15", "GCIS-5.16", "GCIS-5.19", "GCIS-5.20", "GCIS-5.21",
        "GCIS-5.25", "GCIS-5.31",
    ]  # fmt: skip
    details = {i.check_id: i.detail for i in issues}
    assert details["GCIS-5.3"] == "capabilities added: NET_ADMIN"  # CHOWN is a default one
    assert details["GCIS-5.5"] == "host paths mounted: /etc:/host/etc"
    assert details["GCIS-5.19"] == "shared mount propagation: /etc"
    assert details["GCIS-5.31"] == "runtime socket mounted: /var/run/docker.sock"


def test_a_hardened_container_fails_no_check() -> None:
    pod = pod_review()["request"]["object"]
    assert check_pod_container(pod["spec"], pod["spec"]["containers"][0], {}) == []


def test_the_app_armor_field_counts_as_the_annotation_does() -> None:
    container = {"name": "a", "image": "a", "securityContext": {}}
    spec = {
        "containers": [container],
        "securityContext": {"appArmorProfile": {"type": "Unconfined"}},
    }
    assert "GCIS-5.1" in {i.check_id for i in check_pod_container(spec, container, {})}


def test_the_pod_checks_are_container_checks_of_the_catalogue() -> None:
    assert all(CATALOG[c].target == "container" for c in POD_CHECKS)
    left_out = {c for c, i in CATALOG.items() if i.target == "container"} - POD_CHECKS
    assert left_out == {"GCIS-5.14", "GCIS-5.17", "GCIS-5.22", "GCIS-5.23", "GCIS-5.28",
                        "GCIS-5.30"}  # fmt: skip
