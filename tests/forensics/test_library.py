"""The library of bundles on a host, in a real folder: listing, finding, pinning, retention."""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import stat
from pathlib import Path

import pytest

from garrison.errors import InvalidInput, NotFound
from garrison.forensics.bundle import BundleWriter
from garrison.forensics.library import BundleInfo, Library

WEB = "3f2a9c1d7e4b" + "a" * 52
DB = "3f2a9c000000" + "b" * 52
NAMES = {WEB: "/web", DB: "/db"}
DAY = 86400.0
NOW = 1_800_000_000.0


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return Library(tmp_path / "data" / "forensics" / "bundles")


def keep(
    library: Library, bundle_id: str, created: float, container: str = WEB, size: int = 1000
) -> BundleInfo:
    """A finished bundle of ``container`` made at ``created``, about ``size`` bytes."""
    subject = {"containerId": container, "containerName": NAMES[container], "reason": "t"}
    writer = BundleWriter(library.new_path(bundle_id), bundle_id, subject)
    writer.add_bytes("noise", random.Random(bundle_id).randbytes(size))  # incompressible
    return library.add(dataclasses.replace(writer.finish(), created=created))


def ids(bundles: list[BundleInfo]) -> list[str]:
    return [b.id for b in bundles]


def test_folders_are_private_and_so_are_bundles_and_entries(library: Library) -> None:
    keep(library, "b1", NOW)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(library.root) == 0o700
    assert mode(library.root.parent) == 0o700  # <data_dir>/forensics, made here
    assert {p.name: mode(p) for p in library.root.iterdir()} == {
        "b1.tar.gz": 0o600,
        "b1.json": 0o600,
    }


def test_an_existing_folder_open_to_others_is_closed(tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    Library(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_list_is_newest_first_and_holds_what_add_returned(library: Library) -> None:
    first = keep(library, "b1", NOW - 10)
    second = keep(library, "b2", NOW)
    listed = library.list()
    assert ids(listed) == ["b2", "b1"]
    assert listed[1] == dataclasses.replace(first, created=pytest.approx(first.created))
    assert listed[0].size == second.size == (library.root / "b2.tar.gz").stat().st_size


def test_bundle_info_json_has_the_subjects_fields_in_camel_case(library: Library) -> None:
    doc = keep(library, "b1", NOW).to_json()
    assert doc["created"] == "2027-01-15T08:00:00Z"
    assert (doc["containerId"], doc["containerName"], doc["imageName"]) == (WEB, "/web", "")
    assert doc["reason"] == "t"
    assert (doc["complete"], doc["missing"], doc["pinned"]) == (True, [], False)
    assert doc["path"] == str(library.root / "b1.tar.gz")
    assert doc["subject"]["containerId"] == WEB


def test_a_missing_member_is_listed_by_name(library: Library) -> None:
    writer = BundleWriter(library.new_path("b1"), "b1", {})
    writer.missing("filesystem.tar", "the container was removed")
    info = library.add(writer.finish())
    assert (info.complete, info.missing) == (False, ("filesystem.tar",))
    assert library.list()[0].missing == ("filesystem.tar",)


def test_a_bundle_being_written_is_never_listed_but_is_a_stale_partial(library: Library) -> None:
    keep(library, "done", NOW)
    writer = BundleWriter(library.new_path("b2"), "b2", {})
    writer.add_bytes("a", b"1")
    assert ids(library.list()) == ["done"]
    assert library.stale_partials() == [library.root / "b2.tar.gz.partial"]
    writer.abort()
    assert library.stale_partials() == []


def test_an_entry_whose_bundle_is_gone_is_ignored(library: Library) -> None:
    keep(library, "b1", NOW)
    (library.root / "b1.tar.gz").unlink()
    assert library.list() == []


def test_malformed_entries_are_ignored_and_logged_once(
    library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    keep(library, "good", NOW)
    (library.root / "junk.tar.gz").write_bytes(b"")
    (library.root / "junk.json").write_text("{not json")
    keep(library, "wrong", NOW)
    entry = library.root / "wrong.json"
    entry.write_text(entry.read_text().replace("2027-01-15T08:00:00Z", "soon"))
    with caplog.at_level(logging.WARNING, logger="garrison.forensics.library"):
        assert ids(library.list()) == ["good"]
        assert ids(library.list()) == ["good"]
    warnings = sorted(r.getMessage() for r in caplog.records)
    assert len(warnings) == 2
    assert "junk.json" in warnings[0]
    assert "wrong.json: created" in warnings[1]


def test_get_by_id_prefix_container_id_prefix_and_name(library: Library) -> None:
    keep(library, "3f2a9c1d7e4b-20261204T101500Z", NOW - 20)
    keep(library, "3f2a9c1d7e4b-20261204T111500Z", NOW - 10)
    keep(library, "3f2a9c000000-20261204T121500Z", NOW, container=DB)
    assert library.get("3f2a9c1d7e4b-20261204T101500Z").created == NOW - 20
    assert library.get("3f2a9c0000").id == "3f2a9c000000-20261204T121500Z"  # a unique prefix
    assert library.get("3f2a9c1d").id == "3f2a9c1d7e4b-20261204T111500Z"  # the newest of WEB
    assert library.get(WEB).id == "3f2a9c1d7e4b-20261204T111500Z"
    assert library.get("web").id == "3f2a9c1d7e4b-20261204T111500Z"
    assert library.get("/db").id == "3f2a9c000000-20261204T121500Z"


def test_get_refuses_an_ambiguous_ref_and_names_a_missing_one(library: Library) -> None:
    keep(library, "3f2a9c1d7e4b-20261204T101500Z", NOW - 10)
    keep(library, "3f2a9c000000-20261204T121500Z", NOW, container=DB)
    with pytest.raises(InvalidInput, match="more than one bundle"):
        library.get("3f2a9c")
    with pytest.raises(NotFound, match="no forensics bundle matches 'nothing'"):
        library.get("nothing")
    with pytest.raises(NotFound):
        library.get("3f2")  # too short to be a prefix
    with pytest.raises(InvalidInput, match="name a bundle"):
        library.get(" ")


def test_pin_is_kept_in_the_entry(library: Library) -> None:
    keep(library, "b1", NOW)
    assert library.pin("b1", True).pinned
    assert Library(library.root).get("b1").pinned
    assert not library.pin("b1", False).pinned
    with pytest.raises(NotFound):
        library.pin("b2", True)


def test_remove_takes_the_bundle_and_its_entry(library: Library) -> None:
    keep(library, "b1", NOW)
    library.remove("b1")
    assert list(library.root.iterdir()) == []
    with pytest.raises(NotFound):
        library.remove("b1")


def test_prune_by_age_removes_old_unpinned_bundles_only(library: Library) -> None:
    keep(library, "old", NOW - 3 * DAY)
    keep(library, "older", NOW - 4 * DAY)
    keep(library, "pinned", NOW - 5 * DAY)
    keep(library, "new", NOW - DAY)
    library.pin("pinned", True)
    assert library.prune(max_bytes=0, max_age=2 * DAY, now=NOW) == ["older", "old"]
    assert ids(library.list()) == ["new", "pinned"]
    assert library.prune(max_bytes=0, max_age=0, now=NOW + 100 * DAY) == []


def test_prune_by_size_removes_the_oldest_unpinned_until_all_fit(library: Library) -> None:
    sizes = [keep(library, f"b{i}", NOW + i).size for i in range(4)]
    library.pin("b0", True)
    limit = sizes[0] + sizes[3]  # the pinned one and the newest
    assert library.prune(max_bytes=limit, max_age=0, now=NOW) == ["b1", "b2"]
    assert ids(library.list()) == ["b3", "b0"]


def test_prune_keeps_pinned_bundles_even_over_the_limit(library: Library) -> None:
    keep(library, "p1", NOW - 2)
    keep(library, "p2", NOW - 1)
    keep(library, "b3", NOW)
    library.pin("p1", True)
    library.pin("p2", True)
    assert library.prune(max_bytes=1, max_age=0, now=NOW) == ["b3"]
    assert ids(library.list()) == ["p2", "p1"]


def test_prune_by_age_then_by_size(library: Library) -> None:
    keep(library, "ancient", NOW - 10 * DAY)
    sizes = [keep(library, f"b{i}", NOW - 3 + i).size for i in range(3)]
    removed = library.prune(max_bytes=sizes[2], max_age=DAY, now=NOW)
    assert removed == ["ancient", "b0", "b1"]


def test_unindexed_finds_a_bundle_finished_but_never_added(library: Library) -> None:
    writer = BundleWriter(library.new_path("lost"), "lost", {})
    writer.finish()
    keep(library, "kept", NOW)
    assert library.unindexed() == [library.root / "lost.tar.gz"]
    assert ids(library.list()) == ["kept"]


@pytest.mark.parametrize("bundle_id", ["", ".b", "../b", "a/b", "a b", "é", "x" * 101])
def test_ids_are_checked(library: Library, bundle_id: str) -> None:
    with pytest.raises(InvalidInput, match="bad bundle id"):
        library.new_path(bundle_id)
    with pytest.raises(InvalidInput, match="bad bundle id"):
        library.remove(bundle_id)
    with pytest.raises(InvalidInput, match="bad bundle id"):
        library.pin(bundle_id, True)


def test_a_long_id_of_safe_characters_is_taken(library: Library) -> None:
    bundle_id = "A-z_0.9" + "x" * 93
    assert library.new_path(bundle_id).name == f"{bundle_id}.tar.gz"
