"""An image holding Alpine 3.19's own package database (captured from alpine:3.19: musl at
``1.2.4_git20230717-r4``), scanned through the engine: its inventory equals what the container
itself reads from that database, and musl's advisory, fixed at a later ``_git`` snapshot,
is found (issue 17: such versions were refused and musl never matched).

No Alpine image nor apk-tools can be had on this machine (its registries are Debian's, PyPI and
npm), so the truth inside the container is the database read by busybox's awk, the way
``apk info -v`` lists it: one package per ``P:`` record with its ``V:`` and ``o:`` lines.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from garrison.scan.inventory import inventory_of
from garrison.scan.scanner import Scanner
from garrison.scan.vulndb import VulnDB
from tests.scan.test_inventory_engine import BUSYBOX
from tests.scan.test_versions_apk import musl_db  # noqa: F401 - the fixture

pytestmark = pytest.mark.engine

RunContainer = Callable[..., Any]  # the run_container fixture of tests/conftest.py

DATA = Path(__file__).parent / "data"
IMAGE = "garrison-inv/alpine-db:1"
FILES = {
    "etc/os-release": "inv_alpine319_os-release",
    "etc/alpine-release": "inv_alpine319_alpine-release",
    "lib/apk/db/installed": "inv_alpine319_apk_installed",
}
# Each record: name, version, origin (the source package; apk's default is the name).
TRUTH = r"""awk '
function done() { if (name != "") print name, version, (origin == "" ? name : origin) }
/^P:/ { name = substr($0, 3) }
/^V:/ { version = substr($0, 3) }
/^o:/ { origin = substr($0, 3) }
/^$/ { done(); name = version = origin = "" }
END { done() }
' /lib/apk/db/installed"""


def alpine_files() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, name in FILES.items():
            body = (DATA / name).read_bytes()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(body), 0o644
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


@pytest.fixture
def alpine_image(
    docker_client: docker.DockerClient, run_container: RunContainer
) -> Iterator[tuple[str, Any]]:
    """The image (removed afterwards) and the container that made it, still running."""
    builder = run_container(BUSYBOX, ["sleep", "600"])
    assert builder.put_archive("/", alpine_files())
    builder.commit(repository="garrison-inv/alpine-db", tag="1")
    try:
        yield IMAGE, builder
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_client.images.remove(IMAGE, force=True)


def test_apk_inventory_equals_the_database_as_the_container_reads_it(
    docker_client: docker.DockerClient, alpine_image: tuple[str, Any]
) -> None:
    image, container = alpine_image
    code, out = container.exec_run(["sh", "-c", TRUTH])
    assert code == 0, out.decode()
    truth = {tuple(line.split(" ")) for line in out.decode().splitlines()}

    inventory = inventory_of(docker_client, image)

    got = {(p.name, p.version, p.match_name) for p in inventory.packages}
    assert got == truth
    assert len(truth) == 15
    assert ("musl", "1.2.4_git20230717-r4", "musl") in got
    assert (inventory.os.family, inventory.os.version) == ("alpine", "3.19.1")
    assert inventory.skipped == ()


def test_musls_git_snapshot_in_the_image_matches_its_advisory(
    docker_client: docker.DockerClient,
    alpine_image: tuple[str, Any],
    musl_db: VulnDB,  # noqa: F811 - the fixture
) -> None:
    image, _ = alpine_image

    result = Scanner.for_docker(docker_client, musl_db).scan(image, refresh=True)

    found = {(f.package.name, f.installed_version, f.fixed_version) for f in result.findings}
    assert found == {
        ("musl", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5"),
        ("musl-utils", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5"),
    }
