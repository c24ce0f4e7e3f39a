"""Matching against the real image: the packages dpkg lists in garrison-test/debian:12, and
OSV records written from those live versions (tests/scan/osv_live.py), so "fixed above" and
"fixed at" the installed version stay true whatever Debian has published since."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from garrison.scan.types import OSInfo, Package
from garrison.scan.vulndb import VulnDB
from tests.scan.osv_live import ABOVE_ID, ABOVE_SUFFIX, EQUAL_ID, write_live_records

DATA = Path(__file__).parent / "data"
DEBIAN = "garrison-test/debian:12"
QUERY = r"${Package} ${Version} ${source:Package} ${source:Version}\n"

pytestmark = pytest.mark.engine


def parse_listing(text: str) -> list[Package]:
    """``dpkg-query -W -f QUERY`` output: one "Package Version Source SourceVersion" a line."""
    packages = []
    for line in text.splitlines():
        name, version, source, source_version = line.split()
        packages.append(Package("Debian", name, version, source, source_version))
    return packages


def dpkg_packages(client: docker.DockerClient) -> list[Package]:
    listing = client.containers.run(DEBIAN, ["dpkg-query", "-W", "-f", QUERY], remove=True)
    return parse_listing(listing.decode())


def debian_os(client: docker.DockerClient) -> OSInfo:
    version = client.containers.run(DEBIAN, ["cat", "/etc/debian_version"], remove=True)
    return OSInfo("debian", version.decode().strip())


def test_records_fixed_above_the_live_glibc_match_and_fixed_at_live_openssl_do_not(
    docker_client: docker.DockerClient, test_images: dict[str, str], tmp_path: Path
) -> None:
    assert DEBIAN in test_images
    packages = dpkg_packages(docker_client)
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_path(write_live_records(tmp_path / "osv", packages))

    found = {(f.id, f.package.name): f for f in db.match(packages, debian_os(docker_client))}

    libc6 = next(p for p in packages if p.name == "libc6")
    assert found[ABOVE_ID, "libc6"].fixed_version == libc6.match_version + ABOVE_SUFFIX
    assert found[ABOVE_ID, "libc6"].installed_version == libc6.version
    assert not any(fid == EQUAL_ID for fid, _ in found)  # fixed == installed: not vulnerable


def test_captured_listing_still_parses_and_names_packages_the_image_has(
    docker_client: docker.DockerClient, test_images: dict[str, str]
) -> None:
    """The pure matching tests and the benchmark read osv_debian12_dpkg_query.txt as this
    image's package list; its versions may age, its packages must still be the image's."""
    assert DEBIAN in test_images
    captured = parse_listing((DATA / "osv_debian12_dpkg_query.txt").read_text())
    assert len(captured) > 100
    live = {p.name for p in dpkg_packages(docker_client)}
    assert {p.name for p in captured} <= live
