"""The Debian fixture against the real image: the captured package list is what dpkg in
garrison-test/debian:12 says, so the fixture's "above" and "equal" fix versions stay true."""

from __future__ import annotations

from pathlib import Path

import docker
import pytest

from garrison.scan.types import OSInfo, Package
from garrison.scan.vulndb import VulnDB

DATA = Path(__file__).parent / "data"
QUERY = r"${Package} ${Version} ${source:Package} ${source:Version}\n"


@pytest.mark.engine
def test_fixture_findings_hold_for_the_live_debian_image(
    docker_client: docker.DockerClient, test_images: dict[str, str], tmp_path: Path
) -> None:
    image = "garrison-test/debian:12"
    assert image in test_images
    listing = docker_client.containers.run(image, ["dpkg-query", "-W", "-f", QUERY], remove=True)
    live = listing.decode().splitlines()
    assert live == (DATA / "osv_debian12_dpkg_query.txt").read_text().splitlines()
    version_id = docker_client.containers.run(image, ["cat", "/etc/debian_version"], remove=True)
    packages = [Package("Debian", *line.split()) for line in live]
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_path(DATA / "osv_debian12")
    found = {
        (f.id, f.package.name)
        for f in db.match(packages, OSInfo("debian", version_id.decode().strip()))
    }
    assert ("DEBIAN-CVE-2099-0001", "libc6") in found  # fixed above installed glibc
    assert not any(fid == "DEBIAN-CVE-2099-0002" for fid, _ in found)  # fixed == installed
