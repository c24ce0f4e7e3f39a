"""The Debian test image as this engine saves it (Docker 20.10, ``ID/layer.tar``), rewritten
here into the layouts other tools write: Docker 25's (OCI blobs, ``index.json`` and a
``manifest.json`` naming the blobs), the OCI layout alone as skopeo writes it (no
``manifest.json``), and the same with gzip-compressed layers. Each must give the inventory of
the original, which must be what dpkg itself says inside a container of the image."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import docker
import docker.errors
import pytest

from garrison.devengine import PrivateEngine
from garrison.scan.inventory import inventory_from_files, inventory_of, read_layers
from garrison.scan.types import Inventory
from tests.scan.test_inventory_engine import DEBIAN, DPKG_QUERY

pytestmark = pytest.mark.engine

CHUNK = 1 << 20
LAYER = "application/vnd.oci.image.layer.v1.tar"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
GZIP_MAGIC = b"\x1f\x8b"


PURGED = "garrison-inv/oci-purged:1"


@dataclass(frozen=True)
class Saved:
    """An image's ``docker save`` archive in a file, and dpkg's own view of the image."""

    archive: Path
    image_id: str
    dpkg: set[tuple[str, ...]]


def dpkg_view(client: docker.DockerClient, image: str) -> set[tuple[str, ...]]:
    out = client.containers.run(image, ["sh", "-c", DPKG_QUERY], remove=True)
    return {tuple(line.split()) for line in out.decode().splitlines()}


def save(client: docker.DockerClient, image: str, folder: Path) -> Saved:
    path = folder / "image.tar"
    with path.open("wb") as out:
        for chunk in client.images.get(image).save(chunk_size=CHUNK):
            out.write(chunk)
    return Saved(path, str(client.images.get(image).id), dpkg_view(client, image))


@pytest.fixture(scope="module")
def debian(
    docker_client: docker.DockerClient,
    test_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Saved:
    """The Debian test image: one layer, imported."""
    return save(docker_client, DEBIAN, tmp_path_factory.mktemp("debian"))


@pytest.fixture(scope="module")
def purged(
    docker_client: docker.DockerClient,
    test_images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Saved]:
    """The Debian image with netcat-openbsd purged in a second layer: dpkg's status replaced,
    the package's files whited out (removed afterwards)."""
    container = docker_client.containers.run(
        DEBIAN, ["dpkg", "--purge", "netcat-openbsd"], detach=True
    )
    try:
        assert container.wait()["StatusCode"] == 0
        repository, _, tag = PURGED.partition(":")
        container.commit(repository=repository, tag=tag)
    finally:
        container.remove(force=True)
    try:
        yield save(docker_client, PURGED, tmp_path_factory.mktemp("purged"))
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_client.images.remove(PURGED, force=True)


class Layout:
    """An OCI image layout staged in a folder: content-addressed blobs and their descriptors."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True)

    def add_stream(self, source: IO[bytes], media_type: str, *, compress: bool) -> Any:
        partial = self.root / "partial"
        with partial.open("wb") as raw:
            if compress:
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as zipped:
                    shutil.copyfileobj(source, zipped, CHUNK)
            else:
                shutil.copyfileobj(source, raw, CHUNK)
        digest = hashlib.sha256()
        with partial.open("rb") as written:
            while chunk := written.read(CHUNK):
                digest.update(chunk)
        size = partial.stat().st_size
        partial.rename(self.blobs / digest.hexdigest())
        return {"mediaType": media_type, "digest": f"sha256:{digest.hexdigest()}", "size": size}

    def add_json(self, document: Any, media_type: str) -> Any:
        data = json.dumps(document).encode()
        (self.blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest()}


def name_of(descriptor: Any) -> str:
    return "blobs/sha256/" + descriptor["digest"].removeprefix("sha256:")


def rewrite(saved: Path, target: Path, *, docker_25: bool, compress: bool) -> Path:
    """``saved`` (Docker ≤ 24 layout) as an OCI layout archive at ``target``: with Docker
    25's ``manifest.json`` (blobs first, as Docker writes them) or without one (``index.json``
    first, before the blobs it names)."""
    layout = Layout(target.with_suffix(".d"))
    with tarfile.open(saved) as old:
        image = json.loads(member(old, "manifest.json").read())[0]
        config = layout.add_json(json.loads(member(old, image["Config"]).read()), CONFIG)
        media = LAYER + ("+gzip" if compress else "")
        layers = [
            layout.add_stream(member(old, name), media, compress=compress)
            for name in image["Layers"]
        ]
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers}
    ref = {"org.opencontainers.image.ref.name": "12"}
    entry = layout.add_json(manifest, MANIFEST) | {"annotations": ref}
    top = {
        "index.json": {"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]},
        "oci-layout": {"imageLayoutVersion": "1.0.0"},
    }
    if docker_25:
        top["manifest.json"] = [
            {
                "Config": name_of(config),
                "RepoTags": [DEBIAN],
                "Layers": [name_of(layer) for layer in layers],
            }
        ]
    write_tar(layout, top, target, index_first=not docker_25)
    return target


def member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    found = tar.extractfile(name)
    assert found is not None, name
    return found


def write_tar(layout: Layout, top: dict[str, Any], target: Path, *, index_first: bool) -> None:
    for name, document in top.items():
        (layout.root / name).write_text(json.dumps(document))
    names = sorted(top) if index_first else []
    names += [f"blobs/sha256/{blob.name}" for blob in sorted(layout.blobs.iterdir())]
    names += [] if index_first else sorted(top)
    with tarfile.open(target, "w") as tar:
        for name in names:
            tar.add(layout.root / name, arcname=name)
    shutil.rmtree(layout.root)


def inventory_of_archive(path: Path, image_id: str) -> tuple[Inventory, tuple[str, ...]]:
    """The inventory of an archive file, as the engine path reads it, and its layers."""
    with path.open("rb") as stream:
        rootfs = read_layers(stream)
    inventory = inventory_from_files(
        rootfs.files, image_id, DEBIAN, rootfs.skipped, rootfs.npm_links
    )
    return inventory, rootfs.layers


def members_of(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_debian_archive_as_saved_gives_dpkgs_own_view_and_the_engine_paths_inventory(
    docker_client: docker.DockerClient, debian: Saved
) -> None:
    inventory, layers = inventory_of_archive(debian.archive, debian.image_id)

    got = {(p.name, p.version, p.match_name, p.match_version) for p in inventory.packages}
    assert got == debian.dpkg
    assert len(debian.dpkg) > 100
    assert inventory == inventory_of(docker_client, DEBIAN)
    assert "manifest.json" in members_of(debian.archive)
    assert len(layers) == 1
    assert layers[0].endswith("/layer.tar")  # the engine's own (Docker ≤ 24) layout


def test_purged_archive_as_saved_gives_dpkgs_own_view(purged: Saved, debian: Saved) -> None:
    inventory, layers = inventory_of_archive(purged.archive, purged.image_id)

    got = {(p.name, p.version, p.match_name, p.match_version) for p in inventory.packages}
    assert got == purged.dpkg
    assert {name for name, *_ in debian.dpkg - purged.dpkg} == {"netcat-openbsd"}
    assert len(layers) == 2


@pytest.mark.parametrize("image", ["debian", "purged"])
@pytest.mark.parametrize(
    ("docker_25", "compress"),
    [(True, False), (False, False), (False, True)],
    ids=["docker-25-layout", "oci-layout", "oci-layout-gzip"],
)
def test_rewritten_layout_gives_the_inventory_of_the_original(
    request: pytest.FixtureRequest, tmp_path: Path, image: str, docker_25: bool, compress: bool
) -> None:
    saved: Saved = request.getfixturevalue(image)
    original, old_layers = inventory_of_archive(saved.archive, saved.image_id)
    target = rewrite(saved.archive, tmp_path / "image.tar", docker_25=docker_25, compress=compress)

    inventory, layers = inventory_of_archive(target, saved.image_id)

    assert inventory == original
    assert inventory.skipped == ()
    assert len(layers) == len(old_layers)
    assert all(name.startswith("blobs/sha256/") for name in layers)
    names = members_of(target)
    assert ("manifest.json" in names) is docker_25
    if not docker_25:  # skopeo's order: index.json before the blobs it names
        assert names.index("index.json") < min(names.index(name) for name in layers)
    with tarfile.open(target) as tar:
        assert (member(tar, layers[-1]).read(2) == GZIP_MAGIC) is compress


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_an_oci_archive_written_by_skopeo_gives_dpkgs_own_view(
    engine: PrivateEngine, debian: Saved, tmp_path: Path, compress: bool
) -> None:
    """The OCI layout as another tool writes it (Debian's skopeo, from the engine itself)."""
    assert shutil.which("skopeo"), "skopeo is missing: scripts/bootstrap installs it"
    target = tmp_path / "image.tar"
    argv = ["skopeo", "copy", "--src-daemon-host", engine.base_url, "--insecure-policy"]
    # skopeo gzips what the daemon gives unless told to keep the layers as they are.
    argv += [] if compress else ["--dest-oci-accept-uncompressed-layers"]
    argv += [f"docker-daemon:{DEBIAN}", f"oci-archive:{target}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr

    inventory, layers = inventory_of_archive(target, debian.image_id)

    got = {(p.name, p.version, p.match_name, p.match_version) for p in inventory.packages}
    assert got == debian.dpkg
    assert inventory.skipped == ()
    assert "manifest.json" not in members_of(target)
    assert len(layers) == 1
    assert layers[0].startswith("blobs/sha256/")
    with tarfile.open(target) as tar:
        assert (member(tar, layers[0]).read(2) == GZIP_MAGIC) is compress
