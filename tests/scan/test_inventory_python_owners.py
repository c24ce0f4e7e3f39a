"""Python distributions where Python installs them, eggs zipped or not, and language packages
a system package owns left to that system's advisories — fed real bytes: eggs setuptools 65.5
built (``setup.py bdist_egg``), METADATA pip wrote, and what dpkg wrote when it installed
Debian's ``python3-idna_3.3-1+deb12u1_all.deb`` in garrison-test/debian:12."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from garrison.scan.inventory import inventory_from_files
from garrison.scan.inventory.limits import MAX_MANIFEST
from garrison.scan.inventory.owners import listed_metadata, owned_metadata
from garrison.scan.inventory.python import parse_zipped_egg
from garrison.scan.inventory.wanted import is_python_metadata, is_wanted
from garrison.scan.types import Package
from tests.scan.zip_bombs import CHUNK, Member, deflated_spaces, write_zip

DATA = Path(__file__).parent / "data"
DEBIAN_SITE = "usr/lib/python3/dist-packages"
PIP_SITE = "usr/local/lib/python3.11/dist-packages"
IDNA_PKG_INFO = f"{DEBIAN_SITE}/idna-3.3.egg-info/PKG-INFO"


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        f"{DEBIAN_SITE}/idna-3.3.egg-info/PKG-INFO",
        f"{DEBIAN_SITE}/crit-3.17.1-py3.11.egg-info",
        f"{PIP_SITE}/idna-3.20.dist-info/METADATA",
        "opt/venv/lib/python3.11/site-packages/attrs-23.1.0.dist-info/METADATA",
        "usr/local/lib/python3.11/site-packages/eggdir-2.0.1-py3.11.egg/EGG-INFO/PKG-INFO",
        "usr/local/lib/python3.11/site-packages/eggzip-1.0-py3.11.egg",
    ],
)
def test_metadata_directly_in_a_site_or_dist_packages_folder_counts(path: str) -> None:
    assert is_python_metadata(path)
    assert is_wanted(path)


@pytest.mark.parametrize(
    "path",
    [
        # pytest 7 vendors iniconfig and apipkg inside py: a copy, not an installed distribution
        f"{PIP_SITE}/py/_vendored_packages/iniconfig-1.1.1.dist-info/METADATA",
        f"{PIP_SITE}/pip/_vendor/idna-3.4.dist-info/METADATA",
        # a build's leftovers and source trees, which Python never imports from
        "tmp/build/demo/src/demo.egg-info/PKG-INFO",
        "root/build/demo.egg-info",
        "srv/app/demo-1.0.dist-info/METADATA",
        "tmp/dist/eggzip-1.0-py3.11.egg",
        f"{PIP_SITE}/eggdir-2.0.1-py3.11.egg/EGG-INFO/SOURCES.txt",
    ],
)
def test_metadata_outside_a_python_import_folder_is_not_read(path: str) -> None:
    assert not is_python_metadata(path)
    assert not is_wanted(path)


def test_zipped_egg_gives_its_egg_info() -> None:
    path = f"{PIP_SITE}/eggzip-1.0-py3.11.egg"
    parsed = parse_zipped_egg(data("inv_py_eggzip-1.0-py3.11.egg"), path)
    assert parsed.skipped == []
    assert parsed.packages == [Package("PyPI", "eggzip", "1.0", path=path, licenses=("MIT",))]


def test_egg_that_is_not_a_zip_or_lacks_egg_info_is_skipped_with_why() -> None:
    no_info = io.BytesIO()
    with zipfile.ZipFile(no_info, "w") as egg:
        egg.writestr("eggzip/__init__.py", "VALUE = 1\n")
    assert parse_zipped_egg(b"not a zip", "x.egg").skipped == [
        "x.egg: skipped, not a readable zip (File is not a zip file)"
    ]
    assert parse_zipped_egg(no_info.getvalue(), "x.egg").skipped == [
        "x.egg: skipped, a zip without EGG-INFO/PKG-INFO"
    ]


def test_zipped_egg_inflates_no_more_than_its_limit(tmp_path: Path) -> None:
    spaces = deflated_spaces(64 * CHUNK)
    honest = write_zip(tmp_path / "big.egg", [Member("EGG-INFO/PKG-INFO", spaces, 64 * CHUNK)])
    lying = write_zip(tmp_path / "lie.egg", [Member("EGG-INFO/PKG-INFO", spaces, 100)])

    big = parse_zipped_egg(honest.read_bytes(), "big.egg")
    lie = parse_zipped_egg(lying.read_bytes(), "lie.egg")

    assert big.skipped == ["big.egg: skipped, its EGG-INFO/PKG-INFO is larger than 4 MiB"]
    assert MAX_MANIFEST == 4 * CHUNK
    assert len(lie.skipped) == 1
    assert lie.skipped[0].startswith("lie.egg: skipped, not a readable zip (Bad CRC-32")


def test_dpkg_list_keeps_only_the_metadata_it_names() -> None:
    listed = listed_metadata(data("inv_debian12_python3-idna.list"))
    # the folder's own line looks like a single-file egg-info: owned too, and harmless
    assert listed.decode().splitlines() == [IDNA_PKG_INFO.rpartition("/")[0], IDNA_PKG_INFO]
    assert listed_metadata(listed) == listed  # layers keep it reduced; build reduces again


def test_distroless_md5sums_name_the_same_metadata() -> None:
    assert listed_metadata(data("inv_deb_python3-idna.md5sums")) == IDNA_PKG_INFO.encode()


def test_list_of_one_long_line_is_read_in_one_pass() -> None:
    line = b"/usr/" + b"lib/node_modules/" * 500_000 + b"x"
    assert listed_metadata(line + b"\n/" + IDNA_PKG_INFO.encode()) == IDNA_PKG_INFO.encode()


def debian_tree() -> dict[str, bytes]:
    """garrison-test/debian:12 after ``dpkg -i python3-idna`` and a pip install of idna 3.20,
    as the layers give it."""
    status = (
        data("inv_debian12_dpkg_status") + b"\n" + data("inv_debian12_python3-idna_status_stanza")
    )
    pkg_info = zipfile.ZipFile(DATA / "inv_py_eggdir-2.0.1-py3.11.egg").read("EGG-INFO/PKG-INFO")
    return {
        "etc/os-release": data("inv_debian12_os-release"),
        "var/lib/dpkg/status": status,
        "var/lib/dpkg/info/python3-idna.list": data("inv_debian12_python3-idna.list"),
        IDNA_PKG_INFO: pkg_info.replace(b"eggdir", b"idna").replace(b"2.0.1", b"3.3"),
        f"{PIP_SITE}/idna-3.20.dist-info/METADATA": data("inv_py_idna-3.20_METADATA"),
    }


def test_python_package_dpkg_owns_is_left_to_debian_advisories() -> None:
    inventory = inventory_from_files(debian_tree())

    pypi = [(p.name, p.version) for p in inventory.packages if p.ecosystem == "PyPI"]
    debian = {p.name: p for p in inventory.packages if p.ecosystem == "Debian"}
    assert pypi == [("idna", "3.20")]  # installed by pip over Debian's: its own
    assert (debian["python3-idna"].match_name, debian["python3-idna"].match_version) == (
        "python-idna",
        "3.3-1+deb12u1",
    )
    assert inventory.skipped == ()


def test_without_its_list_the_same_metadata_is_a_pypi_package() -> None:
    tree = debian_tree()
    del tree["var/lib/dpkg/info/python3-idna.list"]
    pypi = {
        (p.name, p.version) for p in inventory_from_files(tree).packages if p.ecosystem == "PyPI"
    }
    assert pypi == {("idna", "3.3"), ("idna", "3.20")}


APK_PY3_IDNA = b"""P:py3-idna
V:3.6-r0
A:noarch
o:py3-idna
F:usr/lib/python3.11/site-packages/idna
R:__init__.py
F:usr/lib/python3.11/site-packages/idna-3.6.dist-info
R:LICENSE.md
R:METADATA
R:RECORD
F:usr/lib/python3.11/site-packages/idna-3.6.dist-info/licenses
R:LICENSE.md

"""


def test_apk_owned_python_metadata_comes_from_its_folder_and_file_lines() -> None:
    # Written in apk's installed-database layout (apk-tools src/database.c, apk_db_fdb_write):
    # an F: line per folder, then an R: line per file in it.
    tree = {"lib/apk/db/installed": APK_PY3_IDNA}
    assert owned_metadata(tree) == {"usr/lib/python3.11/site-packages/idna-3.6.dist-info/METADATA"}
