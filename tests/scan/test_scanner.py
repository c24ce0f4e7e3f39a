"""The scanner's cache: by image id, dropped when the vulnerability data changes, one scan at a
time per image."""

from __future__ import annotations

import threading
from pathlib import Path

from garrison.scan.scanner import ImageRef, Scanner, ScanParts, empty_inventory
from garrison.scan.types import Finding, Inventory, OSInfo, Package
from garrison.scan.vulndb import VulnDB

REF = ImageRef("sha256:aaa", "app:1", {"Config": {"User": "1000"}}, [])


class Counting:
    def __init__(self) -> None:
        self.scans = 0
        self.stamp = 1
        self.gate = threading.Event()
        self.gate.set()

    def match(self, _inventory: Inventory) -> list[Finding]:
        self.gate.wait(10)
        self.scans += 1
        return []

    def scanner(self) -> Scanner:
        parts = ScanParts(lambda _n: REF, empty_inventory, self.match, lambda: self.stamp)
        return Scanner(parts, max_cached=2)


def test_second_scan_of_the_same_image_id_comes_from_the_cache() -> None:
    world = Counting()
    scanner = world.scanner()
    first = scanner.scan("app:1")
    assert scanner.scan("app:1") is first
    assert world.scans == 1
    assert [issue.check_id for issue in first.compliance] == ["GCIS-4.6"]


def test_a_change_of_vulnerability_data_drops_cached_results() -> None:
    world = Counting()
    scanner = world.scanner()
    scanner.scan("app:1")
    world.stamp = 2
    assert scanner.cached(REF.id) is None
    scanner.scan("app:1")
    assert world.scans == 2


def test_refresh_scans_again_and_steps_are_reported() -> None:
    world = Counting()
    scanner = world.scanner()
    steps: list[str] = []
    scanner.scan("app:1")
    scanner.scan("app:1", refresh=True, progress=steps.append)
    assert world.scans == 2
    assert steps == ["resolve", "compliance", "inventory", "vulnerabilities"]


def test_concurrent_scans_of_one_image_scan_it_once() -> None:
    world = Counting()
    world.gate.clear()
    scanner = world.scanner()
    threads = [threading.Thread(target=scanner.scan, args=("app:1",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    world.gate.set()
    for thread in threads:
        thread.join(10)
    assert world.scans == 1


def test_the_cache_keeps_only_the_newest_images() -> None:
    world = Counting()
    scanner = world.scanner()
    for n in range(3):
        scanner.scan_ref(ImageRef(f"sha256:{n}", f"img:{n}", {}, []))
    assert scanner.cached("sha256:0") is None
    assert scanner.cached("sha256:2") is not None


def test_packages_whose_version_cannot_be_read_are_reported_not_dropped(tmp_path: Path) -> None:
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_path(Path(__file__).parent / "data" / "osv_debian12")
    odd = Package("Debian", "libc6", "not-a-version!", "glibc", "~~:bad")
    inventory = Inventory("sha256:aaa", "app:1", OSInfo("debian", "12.7"), (odd,))
    parts = ScanParts(
        lambda _n: REF,
        lambda _ref: inventory,
        lambda inv: db.match_detailed(inv.packages, inv.os),
    )
    result = Scanner(parts).scan("app:1")
    assert result.findings == ()
    assert any("libc6" in problem or "glibc" in problem for problem in result.errors)
