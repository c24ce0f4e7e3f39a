"""npm packages of a real image, every awkward case in one: a workspace linked from
node_modules, a scoped package, a nested older copy, a development dependency, and the same
project's lockfiles (versions 1, 2 and 3) without node_modules. The inventory must equal
what npm itself says each project holds (``npm query``), asked of the container's own file
system (its overlay's merged folder: ``/proc/PID/root`` would not do, npm resolves it to the
host's ``/``)."""

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
from tests.scan.npm_projects import make_installed, make_lock_only, npm_query
from tests.scan.test_inventory_engine import DEBIAN

pytestmark = pytest.mark.engine

RunContainer = Callable[..., Any]  # the run_container fixture of tests/conftest.py

IMAGE = "garrison-inv/npm:1"
INSTALLED = "srv/app"
LOCK_ONLY = {f"srv/lock{version}": version for version in (1, 2, 3)}


def projects(root: Path, cache: Path) -> bytes:
    """A tar of the projects, as npm made them, under srv/ (symlinks kept as symlinks)."""
    app = make_installed(root / "app", cache)
    for folder, version in LOCK_ONLY.items():
        make_lock_only(app, root / Path(folder).name, cache, version)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in (INSTALLED, *LOCK_ONLY):
            tar.add(root / Path(folder).name, arcname=folder)
    return out.getvalue()


@pytest.fixture
def npm_image(
    docker_client: docker.DockerClient, run_container: RunContainer, tmp_path: Path
) -> Iterator[tuple[str, Any]]:
    """The image, committed (removed afterwards), and the container that made it, still
    running, for the ground truth."""
    builder = run_container(DEBIAN, ["sleep", "600"])
    assert builder.put_archive("/", projects(tmp_path / "projects", tmp_path / "cache"))
    builder.commit(repository="garrison-inv/npm", tag="1")
    try:
        yield IMAGE, builder
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_client.images.remove(IMAGE, force=True)


def truth(container: Any, folder: str, cache: Path) -> list[tuple[str, str]]:
    """(name, version) of each package npm says the project in the container holds."""
    root = Path(container.attrs["GraphDriver"]["Data"]["MergedDir"])
    return [(n, v) for _, n, v in npm_query(root / folder, cache, folder in LOCK_ONLY)]


def test_npm_inventory_equals_what_npm_says_each_project_holds(
    docker_client: docker.DockerClient, npm_image: tuple[str, Any], tmp_path: Path
) -> None:
    image, container = npm_image
    container.reload()

    inventory = inventory_of(docker_client, image)

    npm = [p for p in inventory.packages if p.ecosystem == "npm"]
    for folder in (INSTALLED, *LOCK_ONLY):
        got = sorted((p.name, p.version) for p in npm if p.path.startswith(f"{folder}/"))
        assert got == sorted(truth(container, folder, tmp_path / "cache")), folder
    installed = {(p.path, p.name) for p in npm if p.path.startswith(f"{INSTALLED}/")}
    assert (f"{INSTALLED}/packages/ws/package.json", "ws") in installed  # the linked workspace
    assert (f"{INSTALLED}/node_modules/devtool/package.json", "devtool") in installed
    assert {p.path for p in npm if p.path.startswith("srv/lock1/")} == {
        "srv/lock1/package-lock.json"
    }
    assert len(npm) == 6 + 3 * 5
    assert inventory.skipped == ()
