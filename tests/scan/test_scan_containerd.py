"""Scanning under containerd gives what scanning under Docker gives, for the same image.

The session engine's test images are copied into a private containerd (Debian's 1.6, driven by
ctr) under the same names; each is then scanned through Docker (``docker save``, image inspect
and history) and through containerd (``ctr images export``, the OCI config rewritten as Docker's
inspect), and the two results compared: the same image id, OS, packages and image compliance.
Containers are made with ctr and checked as ``garrison scan container`` checks them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from garrison.errors import NotFound, RuntimeUnavailable
from garrison.scan.containerd import normalized
from garrison.scan.oci_as_docker import container_inspect, epoch, image_history
from garrison.scan.scanner import Scanner
from garrison.scan.types import ScanResult
from tests.cli_run import garrison, private_dir
from tests.conftest import Container, remove_all
from tests.containerd_support import PrivateContainerd, running_containerd
from tests.ctr_container import CtrContainer, import_from_engine, run_ctr

ENGINE = pytest.mark.engine  # the session's Docker engine, and a private containerd

NS = "garrison-scan"
DEBIAN = "garrison-test/debian:12"
BUSYBOX = "garrison-test/busybox:latest"
# Made here from busybox by a commit that sets what the image checks read.
CONFIGURED = "garrison-test/scan-configured:latest"
CONFIGURED_CONF = {
    "User": "1000",
    "Healthcheck": {"Test": ["CMD", "/bin/true"], "Interval": 30_000_000_000},
    "Env": ["PATH=/bin", "API_TOKEN=not-a-real-one"],
    "ExposedPorts": {"8080/tcp": {}},
}


@pytest.fixture(scope="module")
def configured(docker_client: docker.DockerClient, test_images: dict[str, str]) -> Iterator[str]:
    """CONFIGURED on the session engine (USER 1000, a HEALTHCHECK, a secret in ENV); removed
    at the end."""
    made = [docker_client.containers.create(BUSYBOX, ["/bin/true"])]
    try:
        repository, _, tag = CONFIGURED.partition(":")
        made[0].commit(repository=repository, tag=tag, conf=CONFIGURED_CONF)
        yield CONFIGURED
    finally:
        remove_all(made)
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(CONFIGURED, force=True)


@pytest.fixture(scope="module")
def daemon(docker_client: docker.DockerClient, configured: str) -> Iterator[PrivateContainerd]:
    """A private containerd with the images under the engine's names in NS; its containers,
    the daemon (by pid), its directory and cgroups removed at the end, even on failure."""
    assert os.geteuid() == 0, "containerd's tests run as root"
    images = [DEBIAN, BUSYBOX, configured]
    with running_containerd(NS, lambda d: import_from_engine(docker_client, d, NS, images)) as d:
        yield d


@pytest.fixture(scope="module")
def under_containerd(daemon: PrivateContainerd) -> Scanner:
    return Scanner.for_containerd(daemon.address, NS, None)


@pytest.fixture(scope="module")
def under_docker(docker_client: docker.DockerClient) -> Scanner:
    return Scanner.for_docker(docker_client, None)


@pytest.fixture
def ctr_containers(daemon: PrivateContainerd) -> Iterator[list[str]]:
    """Ids of containers a test made with ctr; removed after it, even when it fails."""
    made: list[str] = []
    try:
        yield made
    finally:
        for container_id in made:
            daemon.remove_container(container_id, NS)


@pytest.fixture
def docker_containers(docker_client: docker.DockerClient) -> Iterator[DockerContainers]:
    """Creates containers on the session engine; removed after the test, even when it fails."""
    made = DockerContainers(docker_client)
    try:
        yield made
    finally:
        remove_all(made.made)


@dataclass
class DockerContainers:
    client: docker.DockerClient
    made: list[Container] = field(default_factory=list)

    def create(self, image: str, command: list[str], **options: Any) -> Container:
        self.made.append(self.client.containers.create(image, command, **options))
        return self.made[-1]


def packages(result: ScanResult) -> set[tuple[str, str, str, str]]:
    return {(p.name, p.version, p.match_name, p.match_version) for p in result.inventory.packages}


@ENGINE
@pytest.mark.parametrize("image", [DEBIAN, BUSYBOX])
def test_an_image_scanned_under_containerd_has_dockers_id_packages_and_compliance(
    image: str, under_docker: Scanner, under_containerd: Scanner, test_images: dict[str, str]
) -> None:
    by_docker = under_docker.scan(image, refresh=True)
    by_containerd = under_containerd.scan(image, refresh=True)

    assert by_containerd.inventory.image_id == by_docker.inventory.image_id == test_images[image]
    assert by_containerd.inventory.image_name == image
    assert by_containerd.inventory.os == by_docker.inventory.os
    assert packages(by_containerd) == packages(by_docker)
    assert by_containerd.compliance == by_docker.compliance
    assert by_containerd.errors == by_docker.errors
    if image == DEBIAN:
        assert by_containerd.inventory.os.family == "debian"
        assert len(packages(by_containerd)) > 100


@ENGINE
def test_an_images_configuration_and_history_read_from_its_oci_config_match_dockers(
    configured: str, under_docker: Scanner, under_containerd: Scanner
) -> None:
    by_docker = under_docker.resolve(configured)
    by_containerd = under_containerd.resolve(configured)

    assert by_containerd.id == by_docker.id
    for key in ("User", "Healthcheck", "Env", "ExposedPorts", "Cmd", "Labels"):
        assert by_containerd.inspect["Config"].get(key) == by_docker.inspect["Config"].get(key)
    assert by_docker.inspect["RepoTags"] == [configured]
    # Both names ctr import left point at it: docker.io/… and the short one tagged back.
    assert configured in by_containerd.inspect["RepoTags"]
    fields = ("CreatedBy", "Created", "Comment")
    assert [[h[f] for f in fields] for h in by_containerd.history] == [
        [h[f] for f in fields] for h in by_docker.history
    ]
    assert by_containerd.history[0]["Id"] == by_docker.id
    # USER 1000 and a HEALTHCHECK pass on both; the token in ENV is flagged on both.
    issues = under_containerd.scan(configured, refresh=True).compliance
    assert issues == under_docker.scan(configured, refresh=True).compliance
    assert [i.check_id for i in issues] == ["GCIS-4.10"]


@ENGINE
def test_an_image_is_found_by_its_id_and_its_digest_is_its_repository_at_its_target(
    daemon: PrivateContainerd, under_containerd: Scanner, test_images: dict[str, str]
) -> None:
    image_id = test_images[BUSYBOX]
    assert under_containerd.resolve(image_id).id == image_id
    assert under_containerd.resolve(image_id.removeprefix("sha256:")[:12]).id == image_id

    listed = daemon.ctr("images", "list", f"name=={BUSYBOX}", namespace=NS).splitlines()
    target = listed[1].split()[2]
    digests = under_containerd.resolve(BUSYBOX).inspect["RepoDigests"]
    assert f"garrison-test/busybox@{target}" in digests


@ENGINE
def test_a_missing_image_is_not_found_and_says_where_it_was_looked_for(
    daemon: PrivateContainerd, under_containerd: Scanner
) -> None:
    with pytest.raises(NotFound) as raised:
        under_containerd.scan("garrison-test/no-such-image:1")
    assert str(raised.value) == (
        f"image garrison-test/no-such-image:1 not found in containerd namespace {NS} "
        f"at {daemon.address}"
    )


def test_a_containerd_that_does_not_answer_is_runtime_unavailable(tmp_path: Path) -> None:
    scanner = Scanner.for_containerd(str(tmp_path / "containerd.sock"), NS, None)
    with pytest.raises(RuntimeUnavailable, match="containerd cannot be reached at"):
        scanner.scan(BUSYBOX)
    with pytest.raises(RuntimeUnavailable, match="containerd cannot be reached at"):
        scanner.check_container("anything")


def containerd_args(daemon: PrivateContainerd) -> list[str]:
    return ["--runtime", "containerd", "--containerd-address", daemon.address,
            "--containerd-namespace", NS]  # fmt: skip


@ENGINE
def test_scan_image_with_runtime_containerd_prints_the_result_docker_gives(
    daemon: PrivateContainerd, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    data = private_dir(tmp_path / "data")
    table = garrison("scan", "image", BUSYBOX, *containerd_args(daemon), "--data-dir", data)
    assert table.code == 0, table
    assert BUSYBOX in table.out
    assert "GCIS-4.1" in table.out

    ran = garrison("scan", "image", BUSYBOX, "--json", *containerd_args(daemon),
                   "--data-dir", data)  # fmt: skip
    assert ran.code == 0, ran
    printed = json.loads(ran.out)
    assert printed["imageId"] == docker_client.images.get(BUSYBOX).id
    assert [i["id"] for i in printed["compliance"]] == ["GCIS-4.1", "GCIS-4.6"]

    missing = garrison("scan", "image", "nope:1", *containerd_args(daemon), "--data-dir", data)
    assert missing.code == 1, missing
    assert missing.lines[-1] == (f"garrison: image nope:1 not found in containerd namespace "
                                 f"{NS} at {daemon.address}")  # fmt: skip


@ENGINE
def test_a_root_container_is_flagged_under_containerd_as_under_docker(
    daemon: PrivateContainerd,
    under_containerd: Scanner,
    under_docker: Scanner,
    docker_containers: DockerContainers,
) -> None:
    running: CtrContainer = run_ctr(daemon, NS, BUSYBOX, ["sleep", "600"], name="scan-root")
    try:
        of_docker = docker_containers.create(BUSYBOX, ["sleep", "600"])
        by_docker = under_docker.check_container(of_docker.id)
        by_containerd = under_containerd.check_container(running.id)
        by_name = under_containerd.check_container("scan-root")  # nerdctl's name label
    finally:
        running.remove()

    assert "GCIS-4.1" in [i.check_id for i in by_docker.issues]
    assert "GCIS-4.1" in [i.check_id for i in by_containerd.issues]
    assert (by_containerd.container_id, by_containerd.container_name) == (running.id, "scan-root")
    assert (by_containerd.image_name, by_containerd.image_id) == (BUSYBOX, by_docker.image_id)
    assert by_containerd.digest.startswith("garrison-test/busybox@sha256:")
    assert by_name.container_id == running.id


@ENGINE
def test_privileged_and_host_network_are_flagged_under_containerd_as_under_docker(
    daemon: PrivateContainerd,
    under_containerd: Scanner,
    under_docker: Scanner,
    ctr_containers: list[str],
    docker_containers: DockerContainers,
) -> None:
    ctr_containers.append("scan-priv-" + secrets.token_hex(4))
    # ctr has no --user: the image's USER 1000 is the container's user on both runtimes.
    daemon.ctr("containers", "create", "--privileged", "--net-host", CONFIGURED,
               ctr_containers[0], "sleep", "600", namespace=NS)  # fmt: skip
    of_docker = docker_containers.create(
        CONFIGURED, ["sleep", "600"], privileged=True, network_mode="host"
    )

    by_docker = {i.check_id for i in under_docker.check_container(of_docker.id).issues}
    by_containerd = {i.check_id for i in under_containerd.check_container(ctr_containers[0]).issues}

    for flagged in ("GCIS-5.4", "GCIS-5.9"):  # privileged, the host's network
        assert flagged in by_docker
        assert flagged in by_containerd
    assert "GCIS-4.1" not in by_docker | by_containerd  # runs as 1000
    assert "GCIS-5.3" not in by_docker | by_containerd  # privileged says it, not cap-add


@ENGINE
def test_scan_container_with_runtime_containerd_reports_its_compliance(
    daemon: PrivateContainerd, ctr_containers: list[str], tmp_path: Path
) -> None:
    ctr_containers.append("scan-cli-" + secrets.token_hex(4))
    daemon.ctr("containers", "create", "--cap-add", "CAP_SYS_ADMIN", BUSYBOX, ctr_containers[0],
               "sleep", "600", namespace=NS)  # fmt: skip
    data = private_dir(tmp_path / "data")

    ran = garrison("scan", "container", ctr_containers[0], "--json", *containerd_args(daemon),
                   "--data-dir", data)  # fmt: skip

    assert ran.code == 0, ran
    issues = {i["id"]: i for i in json.loads(ran.out)}
    assert issues["GCIS-5.3"]["detail"] == "capabilities added: SYS_ADMIN"
    assert issues["GCIS-4.1"]["detail"] == "the container runs as 0:0"
    assert "GCIS-5.4" not in issues


# ---- the rewriting alone, on documents shaped as ctr gives them ---------------------------

# `ctr containers create --privileged` on this machine (containerd 1.6.20), cut to what the
# checks read: every capability, the device cgroup open to all, no masked paths.
PRIVILEGED_SPEC = {
    "process": {"user": {"uid": 0, "gid": 0}, "noNewPrivileges": True,
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_ADMIN"]}},
    "root": {"path": "rootfs"},
    "linux": {"resources": {"devices": [{"allow": True, "access": "rwm"}]},
              "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"},
                             {"type": "mount"}],
              "devices": [{"path": "/dev/kvm", "type": "c", "major": 10, "minor": 232}]},
}  # fmt: skip


def host_config_of(spec: dict[str, Any]) -> dict[str, Any]:
    inspect = container_inspect({"ID": "c1", "Image": BUSYBOX, "Spec": spec}, "sha256:abc")
    return dict(inspect["HostConfig"])


def test_a_privileged_spec_reads_as_docker_writes_a_privileged_container() -> None:
    host = host_config_of(PRIVILEGED_SPEC)
    assert host["Privileged"] is True
    assert (host["CapAdd"], host["Devices"]) == ([], [])  # as in Docker's inspect
    assert host["NetworkMode"] == "host"
    assert host["SecurityOpt"] == ["apparmor=unconfined", "seccomp=unconfined",
                                   "no-new-privileges=true"]  # fmt: skip


def test_masked_paths_make_a_spec_with_every_device_not_privileged() -> None:
    linux = {**PRIVILEGED_SPEC["linux"], "maskedPaths": ["/proc/kcore"]}
    host = host_config_of({**PRIVILEGED_SPEC, "linux": linux})
    assert host["Privileged"] is False
    assert host["CapAdd"] == ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]
    assert host["Devices"][0]["PathOnHost"] == "/dev/kvm"


def test_a_joined_namespace_is_shared_not_host() -> None:
    namespaces = [{"type": "network", "path": "/proc/42/ns/net"}, {"type": "pid"}]
    host = host_config_of({"linux": {"namespaces": namespaces}})
    assert host["NetworkMode"] == "shared:/proc/42/ns/net"
    assert host["PidMode"] == "private"
    assert (host["IpcMode"], host["UTSMode"]) == ("host", "host")


def test_history_is_newest_first_in_epoch_seconds_as_the_docker_sdk_gives_it() -> None:
    config = {"history": [
        {"created": "2024-01-02T03:04:05.123456789Z", "created_by": "ADD file:ab in /"},
        {"created": "2024-01-02T03:04:06Z", "created_by": "USER 1000", "empty_layer": True},
    ]}  # fmt: skip
    rows = image_history("sha256:abc", config, ["app:1"])
    assert [(r["CreatedBy"], r["Created"], r["Id"]) for r in rows] == [
        ("USER 1000", 1704164646, "sha256:abc"),
        ("ADD file:ab in /", 1704164645, "<missing>"),
    ]
    assert (rows[0]["Tags"], rows[1]["Tags"], rows[1]["Size"]) == (["app:1"], None, 0)
    assert epoch("not a time") == 0


@pytest.mark.parametrize(
    ("name", "stored"),
    [("busybox", "docker.io/library/busybox:latest"),
     ("garrison-test/debian:12", "docker.io/garrison-test/debian:12"),
     ("localhost:5000/app", "localhost:5000/app:latest"),
     ("ghcr.io/org/app@sha256:ab", "ghcr.io/org/app@sha256:ab")],
)  # fmt: skip
def test_a_short_docker_name_is_tried_as_containerd_stores_it(name: str, stored: str) -> None:
    assert normalized(name) == stored
