"""Garrison's container image, built from its wheel by ``scripts/build-image``, runs what the
Kubernetes manifests (deploy/kubernetes) run in it.

The image is built for real onto the session's private engine, by the script a user runs
(wheel, Debian root file system, ``docker import``), then containers of it are run as the
manifests run them: the console as uid 10001 on a read-only root, and the defender's BPF
process events source loaded from the installed wheel, with the DaemonSet's capabilities and
no compiler in the image. This needs root, the kernel's BTF and the Debian mirror and package
index that the build reaches: asserted, not skipped. The image and every container are
removed at the end, also when a test fails.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
import yaml

from garrison.devengine import PrivateEngine
from tests.conftest import Container, remove_all
from tests.support import wait_for

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/build-image"
DEFENDER = ROOT / "deploy/kubernetes/defender.yaml"
VERSION = importlib.metadata.version("garrison")
TAG = f"garrison:{VERSION}"  # what the manifests name, with VERSION set
VENV = "/opt/garrison"
SITE = f"{VENV}/lib/python3.11/site-packages"  # Debian 12's Python
BUILD_TIMEOUT = 900  # about a minute here; the mirror and the index may be slow

# Capabilities of the defender's DaemonSet that this machine cannot give a container: Docker
# 20.10 (Debian 12's) knows no CAP_BPF or CAP_PERFMON, which CAP_SYS_ADMIN covers, and
# CAP_SYS_RESOURCE is not in this machine's bounding set (runc then fails to start it).
NOT_HERE = {"BPF", "PERFMON", "SYS_RESOURCE"}

# Run by the image's Python: start the process events source as the defender does, and report
# where everything came from.
LOAD = """
import json, shutil, sys
from pathlib import Path
assert shutil.which("clang") is None, shutil.which("clang")
import garrison
from garrison.sensors.bpf.build import build
from garrison.sensors.bpf.proc_events import BpfProcEvents
cache = Path(sys.argv[1])
source = BpfProcEvents(cache_dir=cache).start()
try:
    report = {"running": source.running, "tcp": source.tcp_events}
finally:
    source.stop()
report |= {"package": garrison.__file__, "object": str(build("proc_events", cache))}
print(json.dumps(report | {"cache": cache.exists()}))
"""

VERSIONS = """
import importlib.metadata, json, sys
import garrison
print(json.dumps({"distribution": importlib.metadata.version("garrison"),
    "module": garrison.__version__, "file": garrison.__file__, "python": sys.version}))
"""


@dataclass(frozen=True)
class Built:
    tag: str
    archive: Path  # what --output wrote
    said: str  # the script's standard output


@pytest.fixture(scope="module")
def image(
    engine: PrivateEngine,
    docker_client: docker.DockerClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Built]:
    archive = tmp_path_factory.mktemp("image") / "garrison.tar"
    argv = ["nice", str(SCRIPT), "--docker-host", engine.base_url, "--output", str(archive)]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        yield Built(TAG, archive, done.stdout)
    finally:
        archive.unlink(missing_ok=True)  # a few hundred MB
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(TAG, force=True)


def run(client: docker.DockerClient, command: list[str], **kwargs: Any) -> tuple[int, str, str]:
    """Run a container of the image to its end: exit status, standard output and error."""
    container: Container = client.containers.create(TAG, command, **kwargs)
    try:
        container.start()
        status = container.wait(timeout=120)["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
        return status, out, container.logs(stdout=False, stderr=True).decode()
    finally:
        remove_all([container])


def defender_capabilities() -> list[str]:
    (daemonset,) = (d for d in yaml.safe_load_all(DEFENDER.read_text()) if d["kind"] == "DaemonSet")
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    context = container["securityContext"]
    assert context["capabilities"]["drop"] == ["ALL"]
    return sorted(set(context["capabilities"]["add"]) - NOT_HERE)


def test_the_script_tags_the_image_with_the_package_version_and_writes_its_archive(
    image: Built, docker_client: docker.DockerClient
) -> None:
    assert image.said.strip() == TAG
    config = docker_client.images.get(TAG).attrs["Config"]
    assert config["Entrypoint"] == [f"{VENV}/bin/garrison"]
    assert config["Env"][0].startswith(f"PATH={VENV}/bin:")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == "garrison"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    with tarfile.open(image.archive) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
    assert [entry["RepoTags"] for entry in manifest] == [[TAG]]


def test_the_image_runs_the_installed_package_of_that_version_on_debians_python(
    image: Built, docker_client: docker.DockerClient
) -> None:
    status, out, err = run(docker_client, ["-c", VERSIONS], entrypoint=["python"])
    assert status == 0, err
    report = json.loads(out)
    assert report["distribution"] == report["module"] == VERSION
    assert report["file"] == f"{SITE}/garrison/__init__.py"
    assert report["python"].startswith("3.11.")


def test_garrison_is_on_the_path_as_the_manifests_command_names_it(
    image: Built, docker_client: docker.DockerClient
) -> None:
    # The manifests' `command: [garrison, …]` replaces the entry point: PATH must find it.
    status, out, err = run(docker_client, ["defender", "--help"], entrypoint=["garrison"])
    assert status == 0, err
    assert "Usage: garrison defender" in out


def test_garrison_version_names_the_package_version(
    image: Built, docker_client: docker.DockerClient
) -> None:
    status, out, err = run(docker_client, ["--version"])
    assert (status, out) == (0, f"garrison {VERSION}\n"), err


def test_the_image_has_containerds_clients_and_nothing_that_runs_containers(
    image: Built, docker_client: docker.DockerClient
) -> None:
    for client in ("ctr", "containerd"):
        status, out, err = run(docker_client, ["--version"], entrypoint=[client])
        assert status == 0, err
        assert out.startswith(f"{client} "), out
    script = "for b in containerd-shim-runc-v2 containerd-shim runc dockerd; do command -v $b; done"
    status, out, err = run(docker_client, ["-c", script], entrypoint=["sh"])
    assert out == "", err  # command -v found none of them


def test_the_default_command_prints_the_help(
    image: Built, docker_client: docker.DockerClient
) -> None:
    status, out, err = run(docker_client, [])
    assert status == 0, err
    assert "Usage: garrison [OPTIONS] COMMAND" in out


def test_the_console_serves_as_its_manifest_runs_it(
    image: Built, docker_client: docker.DockerClient
) -> None:
    # console.yaml: uid 10001 (no passwd entry), read-only root, /tmp an emptyDir, no
    # capabilities.
    argv = ["console", "serve", "--data-dir", "/tmp/data", "--address", "127.0.0.1:8080"]
    container = docker_client.containers.create(
        TAG, argv, user="10001:10001", read_only=True, tmpfs={"/tmp": ""}, cap_drop=["ALL"]
    )
    fetch = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/').status)"
    try:
        container.start()

        def page() -> bool:
            container.reload()
            assert container.status == "running", container.logs().decode()[-2000:]
            done = container.exec_run(["python", "-c", fetch])
            return done.exit_code == 0 and done.output.strip() == b"200"

        wait_for("the console's page in the image", page)
    finally:
        remove_all([container])


def test_the_bpf_programs_load_from_the_installed_wheel_with_no_compiler_in_the_image(
    image: Built, docker_client: docker.DockerClient
) -> None:
    assert Path("/sys/kernel/btf/vmlinux").is_file(), "the BPF programs need the kernel's BTF"
    # As defender.yaml runs it: its capabilities, no others, not privileged; the host's PID
    # namespace; the kernel's BTF mounted; a read-only root, so nothing may be compiled.
    status, out, err = run(
        docker_client, ["-c", LOAD, "/var/cache/garrison"], entrypoint=["python"],
        cap_drop=["ALL"], cap_add=defender_capabilities(), pid_mode="host", read_only=True,
        volumes={"/sys/kernel/btf": {"bind": "/sys/kernel/btf", "mode": "ro"}},
    )  # fmt: skip
    assert status == 0, err[-3000:]
    report = json.loads(out)
    assert report["running"]
    assert report["tcp"]  # the optional socket program attached too
    assert report["package"] == f"{SITE}/garrison/__init__.py"
    assert report["object"] == f"{SITE}/garrison/sensors/bpf/prebuilt/proc_events.bpf.o"
    assert not report["cache"]  # nothing compiled
