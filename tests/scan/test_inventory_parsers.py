"""The package-database parsers, fed files captured from real images and from this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from garrison.scan.inventory import detect_os, inventory_from_files
from garrison.scan.inventory.apk import parse_installed
from garrison.scan.inventory.dpkg import parse_status
from garrison.scan.inventory.npm import parse_package_json
from garrison.scan.inventory.osinfo import parse_os_release
from garrison.scan.inventory.python import parse_metadata
from garrison.scan.types import OSInfo

DATA = Path(__file__).parent / "data"
STATUS = "var/lib/dpkg/status"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


def dpkg_query_lines(name: str) -> set[tuple[str, ...]]:
    """Output of dpkg-query -W -f '${Package} ${Version} ${source:Package} ${source:Version}'
    captured inside a container of garrison-test/debian:12."""
    return {tuple(line.split()) for line in data(name).decode().splitlines() if line}


def four_tuples(packages: object) -> set[tuple[str, ...]]:
    return {(p.name, p.version, p.match_name, p.match_version) for p in packages}  # type: ignore[attr-defined]


def test_dpkg_status_of_debian12_lists_what_dpkg_query_lists() -> None:
    parsed = parse_status(data("inv_debian12_dpkg_status"), STATUS)
    assert parsed.skipped == []
    assert four_tuples(parsed.packages) == dpkg_query_lines("inv_debian12_dpkg_query.txt")


def test_dpkg_config_files_and_held_packages_are_listed_as_dpkg_query_does() -> None:
    # Captured after `dpkg -r procps` (leaves config-files), `dpkg --purge netcat-openbsd`
    # and `bash hold` in a container: dpkg-query -W still lists procps, not netcat-openbsd.
    parsed = parse_status(data("inv_debian12_dpkg_status_removed"), STATUS)
    assert four_tuples(parsed.packages) == dpkg_query_lines("inv_debian12_dpkg_query_removed.txt")
    assert "procps" in {p.name for p in parsed.packages}


def test_dpkg_source_field_with_version_gives_source_version() -> None:
    parsed = parse_status(data("inv_debian12_dpkg_status"), STATUS)
    bash = next(p for p in parsed.packages if p.name == "bash")
    assert (bash.version, bash.source_name, bash.source_version) == ("5.2.15-2+b13", "", "5.2.15-2")
    assert (bash.match_name, bash.match_version) == ("bash", "5.2.15-2")
    libgcc = next(p for p in parsed.packages if p.name == "libgcc-s1")
    assert libgcc.source_name == "gcc-12"
    assert libgcc.source_version == ""  # the binary's own version


GARBLED = b"""Package: good-one
Status: install ok installed
Version: 1.0-1
Architecture: amd64

Status: install ok installed
Version: 2.0

Package: broken line
this line has no colon
Version: 1

Package: no-version
Status: install ok installed

Package: gone
Status: purge ok not-installed

Package: bad-status
Status: installed
Version: 1

Package: bad-source
Status: install ok installed
Version: 1
Source: a (b) c

Package: good-two
Status: install ok unpacked
Version: 1:2.0~rc1-3
Source: good (1:2.0~rc1-2)
Description: a package
 with a continuation line
 .
 and a blank one
"""


def test_dpkg_garbled_stanzas_are_skipped_and_counted_the_rest_read() -> None:
    parsed = parse_status(GARBLED, STATUS)
    assert [(p.name, p.version) for p in parsed.packages] == [
        ("good-one", "1.0-1"),
        ("good-two", "1:2.0~rc1-3"),
    ]
    assert parsed.packages[1].match_version == "1:2.0~rc1-2"
    # five garbled; the purged not-installed stanza is not listed by dpkg and not an error
    assert len(parsed.skipped) == 5
    assert all(s.startswith(f"{STATUS}: stanza at line ") for s in parsed.skipped)
    assert any("not 'Field: value'" in s for s in parsed.skipped)


def test_dpkg_status_d_stanza_without_status_is_installed_and_md5sums_ignored() -> None:
    # distroless writes var/lib/dpkg/status.d/NAME without a Status field, plus NAME.md5sums
    tzdata = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
    files = {
        "var/lib/dpkg/status.d/tzdata": tzdata,
        "var/lib/dpkg/status.d/tzdata.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  x\n",
        "etc/os-release": data("inv_debian12_os-release"),
    }
    inventory = inventory_from_files(files)
    assert [(p.name, p.version, p.path) for p in inventory.packages] == [
        ("tzdata", "2024a-0+deb12u1", "var/lib/dpkg/status.d/tzdata")
    ]


def test_debian_os_takes_point_release_from_debian_version() -> None:
    files = {
        "etc/os-release": data("inv_debian12_os-release"),
        "etc/debian_version": data("inv_debian12_debian_version"),
    }
    assert detect_os(files) == OSInfo("debian", "12.15", "Debian GNU/Linux 12 (bookworm)")


def test_debian_testing_without_a_number_keeps_os_release_version() -> None:
    files = {
        "etc/os-release": b'ID=debian\nVERSION_ID="13"\n',
        "etc/debian_version": b"trixie/sid\n",
    }
    assert detect_os(files) == OSInfo("debian", "13", "")


def test_os_from_release_files_alone() -> None:
    assert detect_os({"etc/debian_version": b"11.9\n"}) == OSInfo("debian", "11.9")
    assert detect_os({"etc/alpine-release": b"3.19.1\n"}) == OSInfo("alpine", "3.19.1")
    assert detect_os({}) == OSInfo("unknown", "")


def test_os_release_quoting_and_bad_lines() -> None:
    text = b'# comment\nNAME=\'Some OS\'\nPRETTY_NAME="A \\"quoted\\" name"\nBROKEN="open\nID=x\n'
    assert parse_os_release(text) == {
        "NAME": "Some OS",
        "PRETTY_NAME": 'A "quoted" name',
        "ID": "x",
    }


def test_unknown_os_is_recorded_in_skipped() -> None:
    inventory = inventory_from_files({}, "sha256:1", "scratch")
    assert inventory.os.family == "unknown"
    assert inventory.skipped == ("os: unknown (no os-release, debian_version or alpine-release)",)


def test_apk_installed_names_versions_origins_and_licenses() -> None:
    parsed = parse_installed(data("inv_alpine319_apk_installed"), "lib/apk/db/installed")
    assert parsed.skipped == []
    assert len(parsed.packages) == 15
    by_name = {p.name: p for p in parsed.packages}
    ssl = by_name["libssl3"]
    assert (ssl.ecosystem, ssl.version, ssl.match_name, ssl.match_version) == (
        "Alpine",
        "3.1.4-r5",
        "openssl",
        "3.1.4-r5",
    )
    assert by_name["musl"].source_name == ""  # origin equals the name
    assert by_name["ssl_client"].match_name == "busybox"
    assert by_name["musl-utils"].licenses == ("MIT AND BSD-2-Clause AND GPL-2.0-or-later",)


def test_apk_garbled_stanza_skipped_the_rest_read() -> None:
    text = (
        b"P:musl\nV:1.2.4-r2\no:musl\n\n"
        b"P:noversion\n\n"
        b"not a field line\nP:x\nV:1\n\n"
        b"P:zlib\nV:1.3.1-r0\n"
    )
    parsed = parse_installed(text, "lib/apk/db/installed")
    assert [p.name for p in parsed.packages] == ["musl", "zlib"]
    assert len(parsed.skipped) == 2


def test_alpine_inventory_from_files() -> None:
    files = {
        "/etc/os-release": data("inv_alpine319_os-release"),
        "/etc/alpine-release": data("inv_alpine319_alpine-release"),
        "/lib/apk/db/installed": data("inv_alpine319_apk_installed"),
    }
    inventory = inventory_from_files(files, "sha256:ab", "alpine:3.19")
    assert inventory.os == OSInfo("alpine", "3.19.1", "Alpine Linux v3.19")
    assert {p.ecosystem for p in inventory.packages} == {"Alpine"}
    assert inventory.skipped == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Debian's python3-yaml (dist-info), PyJWT (egg-info dir), crit (egg-info file),
        # attrs from this venv (Metadata-Version 2.4 with License-Expression)
        ("inv_py_pyyaml_METADATA", ("pyyaml", "6.0", ("MIT",))),
        ("inv_py_pyjwt_PKG-INFO", ("pyjwt", "2.6.0", ("MIT",))),
        ("inv_py_crit_egg-info", ("crit", "3.17.1", ("GPLv2",))),
        ("inv_py_attrs_METADATA", ("attrs", "26.1.0", ("MIT",))),
    ],
)
def test_python_metadata_name_normalized_per_pep503(
    name: str, expected: tuple[str, str, tuple[str, ...]]
) -> None:
    parsed = parse_metadata(data(name), "x")
    [pkg] = parsed.packages
    assert (pkg.name, pkg.version, pkg.licenses) == expected
    assert pkg.ecosystem == "PyPI"


def test_python_metadata_without_name_is_skipped() -> None:
    parsed = parse_metadata(b"Metadata-Version: 2.1\nSummary: nothing\n", "a.dist-info/METADATA")
    assert parsed.packages == []
    assert parsed.skipped == ["a.dist-info/METADATA: skipped, no Name or Version"]


def test_python_long_license_text_falls_back_to_classifiers() -> None:
    text = (
        b"Metadata-Version: 2.1\nName: Foo_Bar.baz\nVersion: 1.0\n"
        b"License: Copyright (c) 2020 Somebody\n        Permission is hereby granted\n"
        b"Classifier: License :: OSI Approved :: BSD License\n"
    )
    [pkg] = parse_metadata(text, "x").packages
    assert (pkg.name, pkg.licenses) == ("foo-bar-baz", ("BSD License",))


def test_npm_package_json_scoped_and_plain() -> None:
    [npm] = parse_package_json(data("inv_npm_npm_package.json"), "p").packages
    assert (npm.ecosystem, npm.name, npm.version, npm.licenses) == (
        "npm",
        "npm",
        "11.19.1",
        ("Artistic-2.0",),
    )
    [scoped] = parse_package_json(data("inv_npm_string-locale-compare_package.json"), "p").packages
    assert (scoped.name, scoped.version, scoped.licenses) == (
        "@isaacs/string-locale-compare",
        "1.1.0",
        ("ISC",),
    )


def test_npm_bad_json_and_legacy_licenses() -> None:
    bad = parse_package_json(b'{"name": "x", "version": ', "node_modules/x/package.json")
    assert bad.packages == []
    assert bad.skipped[0].startswith("node_modules/x/package.json: skipped, not JSON")
    legacy = b'{"name":"old","version":"0.1.0","licenses":[{"type":"MIT"},{"type":"GPL-2.0"}]}'
    assert parse_package_json(legacy, "p").packages[0].licenses == ("MIT", "GPL-2.0")


def test_npm_only_package_manifests_count_not_marker_files() -> None:
    # npm's own tree on this machine holds dist/esm/package.json markers ({"type": "module"})
    base = "usr/lib/node_modules/npm"
    files = {
        f"{base}/package.json": data("inv_npm_npm_package.json"),
        f"{base}/node_modules/@isaacs/string-locale-compare/package.json": data(
            "inv_npm_string-locale-compare_package.json"
        ),
        f"{base}/node_modules/@isaacs/fs-minipass/dist/esm/package.json": data(
            "inv_npm_esm_marker_package.json"
        ),
        f"{base}/node_modules/broken/package.json": b"{oops",
    }
    inventory = inventory_from_files(files)
    assert sorted(p.name for p in inventory.packages) == ["@isaacs/string-locale-compare", "npm"]
    assert sum("not JSON" in s for s in inventory.skipped) == 1


def test_inventory_from_files_combines_all_ecosystems() -> None:
    files = {
        "etc/os-release": data("inv_debian12_os-release"),
        "etc/debian_version": data("inv_debian12_debian_version"),
        "var/lib/dpkg/status": data("inv_debian12_dpkg_status"),
        "usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA": data(
            "inv_py_pyyaml_METADATA"
        ),
        "usr/lib/python3/dist-packages/crit-3.17.1-py3.11.egg-info": data("inv_py_crit_egg-info"),
        "srv/app/node_modules/npm/package.json": data("inv_npm_npm_package.json"),
    }
    inventory = inventory_from_files(files, "sha256:0e08", "garrison-test/debian:12")
    counts = dict.fromkeys(("Debian", "PyPI", "npm"), 0)
    for pkg in inventory.packages:
        counts[pkg.ecosystem] += 1
    assert counts == {"Debian": 106, "PyPI": 2, "npm": 1}
    assert (inventory.image_id, inventory.image_name) == ("sha256:0e08", "garrison-test/debian:12")
