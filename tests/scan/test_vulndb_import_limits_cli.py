"""Issue 12, OSV archives: ``garrison vulndb import`` of a zip bomb, run as the real command,
is refused in one line (exit 1, no traceback) from the zip's directory alone, at a bounded
peak memory and CPU time, and the database stays as it was. A member that lies about its
size is read no further than it declares: one invalid record, the rest imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from garrison.scan.vulndb import VulnDB
from garrison.scan.vulndb._archive import MAX_RECORD_BYTES
from tests.cli_run import PEAK_LIMIT_MIB, assert_refused_in_one_line, garrison, private_dir
from tests.scan.osv_live import osv_record
from tests.scan.zip_bombs import CHUNK, Member, deflated, deflated_spaces, write_zip

GB = 1_000_000_000
BOMB_SIZE = 1430 * CHUNK  # 1.5 GB of spaces in a 1.5 MB zip
SLICE = 15 * CHUNK  # under the limit for one record


def record(rid: str) -> bytes:
    return json.dumps(osv_record(rid, "glibc", "2.36-9+deb12u15", "a test record")).encode()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder whose database already holds one record."""
    data_dir = private_dir(tmp_path / "data")
    seed = write_zip(tmp_path / "seed.zip", [deflated("seed.json", record("DEBIAN-CVE-2099-1"))])
    assert VulnDB.in_data_dir(data_dir).import_path(seed).imported == 1
    return data_dir


def database(data_dir: Path) -> dict[str, Any]:
    status = VulnDB.in_data_dir(data_dir).status()
    return {k: status[k] for k in ("advisories", "ecosystems", "last_import")}


def test_a_zip_bomb_is_refused_from_its_directory_in_one_line(
    data_dir: Path, tmp_path: Path
) -> None:
    spaces = deflated_spaces(BOMB_SIZE)
    bomb = write_zip(tmp_path / "bomb.zip", [Member("all.json", spaces, BOMB_SIZE)])
    assert bomb.stat().st_size < 2_000_000
    before = database(data_dir)
    ran = garrison("vulndb", "import", bomb, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, "'all.json' is 1.4 GiB inflated", "at most 16 MiB")
    assert ran.seconds < 5  # nothing was inflated
    assert database(data_dir) == before


def test_an_archive_of_records_each_under_the_limit_but_too_many_in_all_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    spaces = deflated_spaces(SLICE)
    members = [Member(f"r{i:04d}.json", spaces, SLICE) for i in range(600)]  # 8.8 GiB
    bomb = write_zip(tmp_path / "wide.zip", members)
    before = database(data_dir)
    ran = garrison("vulndb", "import", bomb, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, "more than 8 GiB inflated")
    assert ran.seconds < 5
    assert database(data_dir) == before


def test_a_folder_holding_a_record_over_the_limit_is_refused_whole(
    data_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "a.json").write_bytes(record("DEBIAN-CVE-2099-2"))
    with (folder / "b.json").open("wb") as big:
        big.truncate(MAX_RECORD_BYTES + 1)  # its size is what counts
    before = database(data_dir)
    ran = garrison("vulndb", "import", folder, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, "'b.json' is 16.0 MiB", "at most 16 MiB")
    assert database(data_dir) == before


def test_a_member_that_lies_about_its_size_is_read_no_further_than_it_declares(
    data_dir: Path, tmp_path: Path
) -> None:
    liar = Member("liar.json", deflated_spaces(BOMB_SIZE), declared_size=2048)
    honest = deflated("honest.json", record("DEBIAN-CVE-2099-3"))
    archive = write_zip(tmp_path / "liar.zip", [liar, honest])
    ran = garrison("vulndb", "import", archive, "--data-dir", data_dir)
    assert ran.code == 0, ran
    assert "1 imported" in ran.out, ran
    assert "1 invalid (skipped)" in ran.out, ran
    assert "liar.json: unreadable: Bad CRC-32" in ran.out, ran
    assert ran.peak_mib < PEAK_LIMIT_MIB, ran
    assert ran.seconds < 5, ran
    assert database(data_dir)["advisories"] == 2
