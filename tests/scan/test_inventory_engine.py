"""Inventories of real images on the private engine, read from ``docker save``."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import pytest

from garrison.errors import NotFound
from garrison.scan.inventory import image_config, inventory_of

pytestmark = pytest.mark.engine

RunContainer = Callable[..., Any]  # the run_container fixture of tests/conftest.py

DEBIAN = "garrison-test/debian:12"
BUSYBOX = "garrison-test/busybox:latest"
DPKG_QUERY = "dpkg-query -W -f '${Package} ${Version} ${source:Package} ${source:Version}\\n'"


def test_debian_inventory_equals_dpkg_query_inside_the_container(
    docker_client: docker.DockerClient, test_images: dict[str, str], run_container: RunContainer
) -> None:
    container = run_container(DEBIAN, ["sleep", "600"])
    code, out = container.exec_run(["sh", "-c", DPKG_QUERY])
    assert code == 0
    expected = {tuple(line.split()) for line in out.decode().splitlines()}

    inventory = inventory_of(docker_client, DEBIAN)

    got = {(p.name, p.version, p.match_name, p.match_version) for p in inventory.packages}
    assert got == expected
    assert len(expected) > 100
    assert inventory.os.family == "debian"
    assert inventory.os.version.startswith("12.")
    assert inventory.image_id == test_images[DEBIAN]
    assert inventory.skipped == ()


@pytest.fixture
def images_made(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Image tags a test commits; removed afterwards, even when the test fails."""
    made: list[str] = []
    try:
        yield made
    finally:
        for tag in reversed(made):
            with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
                docker_client.images.remove(tag, force=True)


def commit_after(
    run_container: RunContainer, image: str, script: str, tag: str, **changes: list[str]
) -> str:
    container = run_container(image, ["sh", "-c", script])
    assert container.wait()["StatusCode"] == 0
    repository, _, version = tag.partition(":")
    container.commit(repository=repository, tag=version, **changes)
    return tag


LOWER_SCRIPT = """set -e
mkdir -p /etc /srv/app/node_modules/left-pad /srv/app/node_modules/lodash
mkdir -p /usr/lib/python3/dist-packages/demo-1.0.dist-info
printf 'ID=alpine\\nVERSION_ID=3.19.1\\n' > /etc/os-release
echo '{"name": "left-pad", "version": "1.3.0"}' > /srv/app/node_modules/left-pad/package.json
echo '{"name": "lodash", "version": "4.17.21"}' > /srv/app/node_modules/lodash/package.json
printf 'Metadata-Version: 2.1\\nName: demo\\nVersion: 1.0\\n' \
    > /usr/lib/python3/dist-packages/demo-1.0.dist-info/METADATA
"""
UPPER_SCRIPT = """set -e
rm -rf /srv/app/node_modules /usr/lib/python3/dist-packages/demo-1.0.dist-info /etc/os-release
mkdir -p /srv/app/node_modules/right-pad
echo '{"name": "right-pad", "version": "1.0.1"}' > /srv/app/node_modules/right-pad/package.json
"""


def top_layer_names(docker_client: docker.DockerClient, image: str) -> set[str]:
    """Member names of the image's last layer tar, to show what the engine exported."""
    raw = b"".join(docker_client.images.get(image).save())
    with tarfile.open(fileobj=io.BytesIO(raw)) as outer:
        manifest = outer.extractfile("manifest.json")
        assert manifest is not None
        top = json.loads(manifest.read())[0]["Layers"][-1]
        member = outer.extractfile(top)
        assert member is not None
        with tarfile.open(fileobj=io.BytesIO(member.read())) as layer:
            return set(layer.getnames())


def test_committed_layers_whiteouts_and_opaque_dir_applied(
    docker_client: docker.DockerClient,
    test_images: dict[str, str],
    run_container: RunContainer,
    images_made: list[str],
) -> None:
    lower = commit_after(run_container, BUSYBOX, LOWER_SCRIPT, "garrison-inv/lower:1")
    images_made.append(lower)
    upper = commit_after(run_container, lower, UPPER_SCRIPT, "garrison-inv/upper:1")
    images_made.append(upper)

    before = inventory_of(docker_client, lower)
    assert {p.name for p in before.packages} == {"left-pad", "lodash", "demo"}
    assert before.os.family == "alpine"

    after = inventory_of(docker_client, upper)
    assert {(p.ecosystem, p.name, p.version) for p in after.packages} == {
        ("npm", "right-pad", "1.0.1")
    }
    assert after.os.family == "unknown"
    # the engine did express the changes as an opaque directory and whiteouts
    names = top_layer_names(docker_client, upper)
    assert "srv/app/node_modules/.wh..wh..opq" in names
    assert "etc/.wh.os-release" in names
    assert "usr/lib/python3/dist-packages/.wh.demo-1.0.dist-info" in names


def test_image_config_gives_user_healthcheck_env_and_history(
    docker_client: docker.DockerClient,
    test_images: dict[str, str],
    run_container: RunContainer,
    images_made: list[str],
) -> None:
    changes = ["USER nobody", "HEALTHCHECK CMD true", "ENV APP_MODE=prod"]
    tag = commit_after(run_container, BUSYBOX, "true", "garrison-inv/config:1", changes=changes)
    images_made.append(tag)

    config = image_config(docker_client, tag)

    assert config["User"] == "nobody"
    assert config["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert "APP_MODE=prod" in config["Env"]
    assert config["RepoTags"] == [tag]
    assert config["Id"] == docker_client.images.get(tag).id
    assert len(config["History"]) == 2
    assert {"CreatedBy", "Created", "Size"} <= set(config["History"][0])


def test_missing_image_is_not_found(
    docker_client: docker.DockerClient, test_images: dict[str, str]
) -> None:
    with pytest.raises(NotFound, match="image garrison-inv/absent:1 not found"):
        inventory_of(docker_client, "garrison-inv/absent:1")
    with pytest.raises(NotFound):
        image_config(docker_client, "garrison-inv/absent:1")
