"""Importing OSV zips and folders, counting what was skipped, and downloading the per-ecosystem
archives from an HTTP server (a real one, on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.errors import InvalidInput
from garrison.scan.types import OSInfo, Package
from garrison.scan.vulndb import DownloadError, VulnDB
from tests.support import serve_directory

DATA = Path(__file__).parent / "data"
BOOKWORM = OSInfo("debian", "12.15")
LIBC = Package("Debian", "libc6", "2.36-9+deb12u14", "glibc", "2.36-9+deb12u14")


def make_zip(path: Path, documents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, body in documents.items():
            archive.writestr(name, body)
    return path


def fixture_zip(path: Path) -> Path:
    docs = {f.name: f.read_bytes() for f in sorted((DATA / "osv_debian12").glob("*.json"))}
    return make_zip(path, docs)


def glibc_record(modified: str, fixed: str, **extra: Any) -> bytes:
    rec = {
        "id": "DEBIAN-CVE-2099-0100",
        "modified": modified,
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
        **extra,
    }
    return json.dumps(rec).encode()


def test_zip_import_counts_imported_withdrawn_invalid_and_dropped_ranges(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    report = db.import_path(fixture_zip(tmp_path / "all.zip"))
    assert (report.imported, report.withdrawn, report.invalid, report.bad_ranges) == (7, 1, 2, 1)
    assert any(
        "osv_invalid_no_modified.json: modified: Field required" in p for p in report.problems
    )
    assert any("6.4-4 not a version!" in p for p in report.problems)
    assert db.status()["ecosystems"] == {"Debian": 7}


def test_reimport_of_the_same_records_changes_nothing(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_path(DATA / "osv_debian12")
    again = db.import_path(DATA / "osv_debian12")
    assert (again.imported, again.replaced, again.unchanged) == (0, 0, 7)
    assert db.status()["advisories"] == 7


def test_newer_modified_replaces_and_older_is_kept_out(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    one = tmp_path / "one.json"
    one.write_bytes(glibc_record("2024-01-01T00:00:00Z", "2.36-9+deb12u15"))
    db.import_path(one)
    one.write_bytes(glibc_record("2024-02-01T00:00:00Z", "2.36-9+deb12u16"))
    assert db.import_path(one).replaced == 1
    one.write_bytes(glibc_record("2023-12-01T00:00:00Z", "2.36-9+deb12u20"))
    assert db.import_path(one).unchanged == 1
    [finding] = db.match([LIBC], BOOKWORM)
    assert finding.fixed_version == "2.36-9+deb12u16"


def test_stamp_changes_when_an_import_changes_the_data(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    before = db.stamp()
    db.import_path(DATA / "osv_debian12")
    assert db.stamp() != before


def test_withdrawn_record_removes_its_earlier_copy(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    one = tmp_path / "one.json"
    one.write_bytes(glibc_record("2024-01-01T00:00:00Z", "2.36-9+deb12u15"))
    db.import_path(one)
    one.write_bytes(
        glibc_record("2024-03-01T00:00:00Z", "2.36-9+deb12u15", withdrawn="2024-03-01T00:00:00Z")
    )
    assert db.import_path(one).withdrawn == 1
    assert db.match([LIBC], BOOKWORM) == []
    assert db.status()["advisories"] == 0


def test_garbage_documents_are_counted_and_the_rest_imported(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "mixed.zip",
        {
            "good.json": glibc_record("2024-01-01T00:00:00Z", "2.36-9+deb12u15"),
            "not-json.json": b"{this is not json",
            "list.json": b"[1, 2]",
            "README.txt": b"ignored: not a .json member",
        },
    )
    report = VulnDB(tmp_path / "vulndb.sqlite").import_path(archive)
    assert (report.imported, report.invalid) == (1, 2)


def test_a_path_that_is_no_osv_source_is_one_clear_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match="not an OSV zip"):
        VulnDB(tmp_path / "vulndb.sqlite").import_path(text)


def test_a_truncated_zip_is_one_clear_error(tmp_path: Path) -> None:
    whole = fixture_zip(tmp_path / "all.zip").read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidInput, match=r"cut\.zip is not"):
        VulnDB(tmp_path / "vulndb.sqlite").import_path(cut)


@pytest.fixture
def osv_server(tmp_path: Path) -> Iterator[str]:
    """A bucket-like tree ``/{ecosystem}/all.zip`` served on 127.0.0.1."""
    root = tmp_path / "bucket"
    (root / "Debian").mkdir(parents=True)
    fixture_zip(root / "Debian" / "all.zip")
    with serve_directory(root) as url:
        yield url


def test_update_downloads_each_ecosystem_archive_and_records_it(
    tmp_path: Path, osv_server: str
) -> None:
    db = VulnDB(tmp_path / "data" / "vulndb.sqlite")
    report = db.update(osv_server, ["Debian"], timeout=10)
    assert (report.imported, report.invalid) == (7, 2)
    status = db.status()
    assert status["updates"]["Debian"]["url"] == f"{osv_server}/Debian/all.zip"
    assert status["last_update"] is not None
    assert [p.name for p in (tmp_path / "data").iterdir() if p.suffix == ".zip"] == []


def test_update_names_the_url_and_status_on_http_failure(tmp_path: Path, osv_server: str) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    with pytest.raises(DownloadError, match=r"/PyPI/all.zip failed: HTTP 404"):
        db.update(osv_server, ["Debian", "PyPI"], timeout=10)
    assert db.status()["ecosystems"] == {"Debian": 7}  # what came before stays


def test_update_gives_up_on_a_server_that_does_not_answer(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections in the kernel, never replies
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(DownloadError, match="timed out"):
            VulnDB(tmp_path / "vulndb.sqlite").update(url, ["Debian"], timeout=0.5)
    assert list(tmp_path.glob("*.zip")) == []


def test_update_reports_a_refused_connection(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(DownloadError, match="refused"):
            VulnDB(tmp_path / "vulndb.sqlite").update(f"http://127.0.0.1:{port}", ["Debian"])
