"""Python distributions of a real image, every awkward case in one: eggs zipped and not, a
vendored copy, a build's leftover under /tmp, a venv, Debian's ``python3-idna`` installed by
dpkg and idna installed by pip beside it. The inventory must equal what the container itself
says: the interpreters' own import paths, read by Python, less what ``dpkg-query -S`` owns."""

from __future__ import annotations

import contextlib
import io
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from packaging.utils import canonicalize_name

from garrison.scan.inventory import inventory_of
from tests.scan.test_inventory_engine import DEBIAN, DPKG_QUERY

pytestmark = pytest.mark.engine

RunContainer = Callable[..., Any]  # the run_container fixture of tests/conftest.py

DATA = Path(__file__).parent / "data"
PIP = "usr/local/lib/python3.11/dist-packages"  # where Debian's pip installs
VENV = "opt/venv"
DEB = "inv_deb_python3-idna_3.3-1+deb12u1_all.deb"

# Run by each interpreter inside the container: every distribution in its import path's
# site/dist-packages folders (as importlib.metadata finds them; eggs are there through
# easy-install.pth), "PATH NAME VERSION" a line. python3-minimal has no importlib.metadata
# (no shutil, so no zipfile): the headers are read by hand, a zipped egg through zipimport.
TRUTH = r"""
import os, sys, zipimport

def name_version(text):
    found = {}
    for line in text.splitlines():
        if not line.strip():
            break
        key, _, value = line.partition(":")
        found.setdefault(key.strip().lower(), value.strip())
    return found["name"], found["version"]

def metadata(path):
    if path.endswith(".dist-info"):
        return os.path.join(path, "METADATA")
    if path.endswith(".egg-info"):
        return os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path
    if path.endswith(".egg") and os.path.isdir(path):
        return os.path.join(path, "EGG-INFO", "PKG-INFO")
    return None

for entry in sys.path:
    if not entry.endswith("-packages") or not os.path.isdir(entry):
        continue
    for name in sorted(os.listdir(entry)):
        path = os.path.join(entry, name)
        meta = metadata(path)
        if meta is not None:
            with open(meta, encoding="utf-8") as file:
                print(meta, *name_version(file.read()))
        elif name.endswith(".egg"):
            text = zipimport.zipimporter(path).get_data("EGG-INFO/PKG-INFO").decode()
            print(path, *name_version(text))
"""
OWNED = """for py in /usr/bin/python3 /opt/venv/bin/python3; do "$py" -c "$TRUTH"; done |
while read -r path name version; do
    if dpkg-query -S "$path" >/dev/null 2>&1; then echo "dpkg $path $name $version"
    else echo "own $path $name $version"; fi
done"""


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def add(tar: tarfile.TarFile, path: str, body: bytes) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode = len(body), 0o644
    tar.addfile(info, io.BytesIO(body))


def awkward_files() -> bytes:
    """A tar of what pip, setuptools, venv and a build leave, each from real files."""
    eggdir = zipfile.ZipFile(DATA / "inv_py_eggdir-2.0.1-py3.11.egg")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        add(tar, "tmp/idna.deb", data(DEB))
        add(tar, f"{PIP}/eggzip-1.0-py3.11.egg", data("inv_py_eggzip-1.0-py3.11.egg"))
        for member in eggdir.namelist():  # easy_install unzips an egg that is not zip-safe
            add(tar, f"{PIP}/eggdir-2.0.1-py3.11.egg/{member}", eggdir.read(member))
        pth = b"./eggzip-1.0-py3.11.egg\n./eggdir-2.0.1-py3.11.egg\n"
        add(tar, f"{PIP}/easy-install.pth", pth)
        add(tar, f"{PIP}/idna-3.20.dist-info/METADATA", data("inv_py_idna-3.20_METADATA"))
        iniconfig = data("inv_py_iniconfig-2.3.1_METADATA")
        add(tar, f"{PIP}/py/_vendored_packages/iniconfig-2.3.1.dist-info/METADATA", iniconfig)
        add(tar, "tmp/build/eggdir/eggdir.egg-info/PKG-INFO", eggdir.read("EGG-INFO/PKG-INFO"))
        add(tar, f"{VENV}/pyvenv.cfg", b"home = /usr/bin\ninclude-system-site-packages = false\n")
        link = tarfile.TarInfo(f"{VENV}/bin/python3")
        link.type, link.linkname = tarfile.SYMTYPE, "/usr/bin/python3"
        tar.addfile(link)
        add(
            tar,
            f"{VENV}/lib/python3.11/site-packages/iniconfig-2.3.1.dist-info/METADATA",
            iniconfig,
        )
    return out.getvalue()


IMAGE = "garrison-inv/python:1"


@pytest.fixture
def python_image(
    docker_client: docker.DockerClient, run_container: RunContainer
) -> Iterator[tuple[str, Any]]:
    """The image, committed (removed afterwards), and the container that made it, still
    running, for the ground truth."""
    builder = run_container(DEBIAN, ["sleep", "600"])
    assert builder.put_archive("/", awkward_files())
    # python3-minimal is installed, not the python3 package Depends names: dpkg is told to go
    # on, and installs, lists and configures the package as it would otherwise.
    code, out = builder.exec_run(["sh", "-c", "dpkg --force-depends -i /tmp/idna.deb"])
    assert code == 0, out.decode()
    assert builder.exec_run(["rm", "/tmp/idna.deb"])[0] == 0
    builder.commit(repository="garrison-inv/python", tag="1")
    try:
        yield IMAGE, builder
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
            docker_client.images.remove(IMAGE, force=True)


def test_python_inventory_equals_the_containers_own_distributions_less_dpkgs(
    docker_client: docker.DockerClient, python_image: tuple[str, Any]
) -> None:
    image, container = python_image
    code, out = container.exec_run(["sh", "-c", OWNED], environment={"TRUTH": TRUTH})
    assert code == 0, out.decode()
    truth = [line.split() for line in out.decode().splitlines()]
    expected = {
        (path.lstrip("/"), canonicalize_name(n), v) for who, path, n, v in truth if who == "own"
    }
    owned = {(n, v) for who, _path, n, v in truth if who == "dpkg"}

    inventory = inventory_of(docker_client, image)

    got = {(p.path, p.name, p.version) for p in inventory.packages if p.ecosystem == "PyPI"}
    assert got == expected
    assert {(n, v) for _, n, v in got} == {
        ("eggzip", "1.0"),
        ("eggdir", "2.0.1"),
        ("idna", "3.20"),
        ("iniconfig", "2.3.1"),  # the venv's; the copy vendored inside py is not one
    }
    assert owned == {("idna", "3.3")}  # the case is there, and left to Debian
    assert inventory.skipped == ()


def test_dpkg_owned_python_package_is_a_debian_package_with_its_source(
    docker_client: docker.DockerClient, python_image: tuple[str, Any]
) -> None:
    image, container = python_image
    code, out = container.exec_run(["sh", "-c", DPKG_QUERY])
    assert code == 0
    expected = {tuple(line.split()) for line in out.decode().splitlines()}

    inventory = inventory_of(docker_client, image)

    debian = {
        (p.name, p.version, p.match_name, p.match_version)
        for p in inventory.packages
        if p.ecosystem == "Debian"
    }
    assert debian == expected
    assert ("python3-idna", "3.3-1+deb12u1", "python-idna", "3.3-1+deb12u1") in debian
