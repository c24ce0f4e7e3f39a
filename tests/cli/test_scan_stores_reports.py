"""``garrison scan image`` and ``garrison scan container`` go through the console: the report
each prints is kept in the store of ``--data-dir``, where ``Console.list_images`` (and so
``GET /api/v1/images``) finds it. The real command against the session's private engine and
its busybox test image (the one test image built in seconds, from this host's busybox)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from garrison.console import Console
from garrison.devengine import BUSYBOX, PrivateEngine
from garrison.devengine.images import cache_dir_from_env, ensure_image
from tests.cli_run import garrison, private_dir
from tests.conftest import Container, remove_all


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return private_dir(tmp_path / "data")


@pytest.fixture
def busybox(docker_client: docker.DockerClient) -> str:
    """The busybox test image's id (not every test image: the Debian ones take minutes)."""
    return ensure_image(docker_client, BUSYBOX, cache_dir_from_env())


@pytest.fixture
def privileged(docker_client: docker.DockerClient, busybox: str) -> Iterator[Container]:
    """Created, not started: a compliance check reads only its configuration."""
    made = [docker_client.containers.create(BUSYBOX.name, ["sleep", "600"], privileged=True)]
    try:
        yield made[0]
    finally:
        remove_all(made)


@pytest.mark.engine
def test_scan_image_stores_the_report_it_prints_and_list_images_returns_it(
    engine: PrivateEngine, busybox: str, data_dir: Path
) -> None:
    ran = garrison("scan", "image", BUSYBOX.name, "--json", "--docker-host", engine.base_url,
                   "--data-dir", data_dir)  # fmt: skip
    assert ran.code == 0, ran
    printed = json.loads(ran.out)

    with Console.open(data_dir) as console:
        (summary,) = console.list_images()
        report = console.image_report(BUSYBOX.name)
    assert (summary["image"], summary["imageId"]) == (BUSYBOX.name, busybox)
    assert summary["complianceTotals"]["total"] == len(printed["compliance"]) > 0
    assert {k: report[k] for k in printed} == printed  # every severity was asked for
    assert report["digest"] == ""  # built here: no registry gave it one


@pytest.mark.engine
def test_scan_container_stores_its_compliance_report(
    engine: PrivateEngine, privileged: Container, data_dir: Path
) -> None:
    ran = garrison("scan", "container", privileged.name, "--json", "--docker-host",
                   engine.base_url, "--data-dir", data_dir)  # fmt: skip
    assert ran.code == 0, ran

    with Console.open(data_dir) as console:
        report = console.container_report(privileged.name)
        assert console.list_images() == []  # a container's check is not an image's scan
    assert report["compliance"] == json.loads(ran.out)
    assert "GCIS-5.4" in [issue["id"] for issue in report["compliance"]]  # privileged
    assert (report["containerId"], report["image"]) == (privileged.id, BUSYBOX.name)


def test_a_scan_that_cannot_reach_the_engine_stores_nothing(data_dir: Path) -> None:
    ran = garrison("scan", "image", "x", "--docker-host", "tcp://127.0.0.1:1",
                   "--data-dir", data_dir)  # fmt: skip
    assert ran.code == 1, ran
    assert ran.lines[-1].startswith("garrison: cannot reach the Docker engine"), ran
    with Console.open(data_dir) as console:
        assert console.list_images() == []
