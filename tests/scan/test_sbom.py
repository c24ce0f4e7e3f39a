"""CycloneDX export of an inventory: structure, purls, and validity against the 1.6 schema."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from garrison.scan.inventory import inventory_from_files
from garrison.scan.sbom import cyclonedx_json, purl
from garrison.scan.types import Inventory, OSInfo, Package

DATA = Path(__file__).parent / "data"
HAS_ARCH = "arch" in {f.name for f in dataclasses.fields(Package)}


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def debian_inventory() -> Inventory:
    files = {
        "etc/os-release": data("inv_debian12_os-release"),
        "etc/debian_version": data("inv_debian12_debian_version"),
        "var/lib/dpkg/status": data("inv_debian12_dpkg_status"),
        "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA": data(
            "inv_py_pyyaml_METADATA"
        ),
        "srv/node_modules/@isaacs/string-locale-compare/package.json": data(
            "inv_npm_string-locale-compare_package.json"
        ),
        "srv/other/node_modules/@isaacs/string-locale-compare/package.json": data(
            "inv_npm_string-locale-compare_package.json"
        ),
    }
    return inventory_from_files(files, "sha256:0e0863ccb3d3", "garrison-test/debian:12")


def alpine_inventory() -> Inventory:
    files = {
        "etc/os-release": data("inv_alpine319_os-release"),
        "lib/apk/db/installed": data("inv_alpine319_apk_installed"),
    }
    return inventory_from_files(files, "sha256:aa", "alpine:3.19")


def document(inventory: Inventory) -> dict[str, Any]:
    text = cyclonedx_json(inventory)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    result: dict[str, Any] = json.loads(text)
    return result


def test_sbom_is_valid_cyclonedx_16_with_image_os_and_every_package() -> None:
    inventory = debian_inventory()
    bom = document(inventory)
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.6")
    image = bom["metadata"]["component"]
    assert (image["type"], image["name"], image["version"]) == (
        "container",
        "garrison-test/debian:12",
        "sha256:0e0863ccb3d3",
    )
    kinds = [c["type"] for c in bom["components"]]
    assert kinds.count("operating-system") == 1
    assert kinds.count("library") == len(inventory.packages) == 106 + 1 + 2
    [os_part] = [c for c in bom["components"] if c["type"] == "operating-system"]
    assert (os_part["name"], os_part["version"]) == ("debian", "12.15")
    [root] = [d for d in bom["dependencies"] if d["ref"] == "image"]
    assert len(root["dependsOn"]) == len(bom["components"])


def test_sbom_purls_per_ecosystem() -> None:
    bom = document(debian_inventory())
    purls = {c["purl"] for c in bom["components"] if "purl" in c}
    arch = "arch=amd64&" if HAS_ARCH else ""
    assert f"pkg:deb/debian/bash@5.2.15-2%2Bb13?{arch}distro=debian-12" in purls
    assert "pkg:pypi/pyyaml@6.0" in purls
    assert "pkg:npm/%40isaacs/string-locale-compare@1.1.0" in purls


def test_sbom_debian_component_carries_source_package() -> None:
    bom = document(debian_inventory())
    [bash] = [c for c in bom["components"] if c["name"] == "bash"]
    props = {p["name"]: p["value"] for p in bash["properties"]}
    assert props["garrison:package:source_name"] == "bash"
    assert props["garrison:package:source_version"] == "5.2.15-2"
    assert props["garrison:package:path"] == "var/lib/dpkg/status"


def test_sbom_same_package_twice_gets_distinct_bom_refs() -> None:
    bom = document(debian_inventory())
    refs = [c["bom-ref"] for c in bom["components"]]
    assert len(refs) == len(set(refs))
    twins = [c for c in bom["components"] if c["name"] == "string-locale-compare"]
    assert len(twins) == 2
    assert twins[0]["group"] == "@isaacs"


def test_sbom_alpine_purls_and_license_expressions() -> None:
    bom = document(alpine_inventory())
    [ssl] = [c for c in bom["components"] if c["name"] == "libssl3"]
    arch = "arch=x86_64&" if HAS_ARCH else ""
    assert ssl["purl"] == f"pkg:apk/alpine/libssl3@3.1.4-r5?{arch}distro=alpine-3.19.1"
    [utils] = [c for c in bom["components"] if c["name"] == "musl-utils"]
    assert utils["licenses"] == [{"expression": "MIT AND BSD-2-Clause AND GPL-2.0-or-later"}]


def test_sbom_several_license_names_stay_valid() -> None:
    pkg = Package("PyPI", "demo", "1.0", licenses=("BSD License", "MIT License"))
    inventory = Inventory("", "", OSInfo("unknown", ""), (pkg,))
    [component] = [c for c in document(inventory)["components"] if c["type"] == "library"]
    assert component["licenses"] == [
        {"license": {"name": "BSD License"}},
        {"license": {"name": "MIT License"}},
    ]


@pytest.mark.parametrize(
    ("pkg", "expected"),
    [
        (
            Package("Debian", "procps", "2:4.0.2-3"),
            "pkg:deb/debian/procps@2:4.0.2-3?distro=debian-12",
        ),
        (Package("npm", "lodash", "4.17.21"), "pkg:npm/lodash@4.17.21"),
        (Package("PyPI", "pyjwt", "2.6.0"), "pkg:pypi/pyjwt@2.6.0"),
    ],
)
def test_purl_of_single_packages(pkg: Package, expected: str) -> None:
    assert purl(pkg, OSInfo("debian", "12.15")).to_string() == expected
