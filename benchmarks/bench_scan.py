"""Scanning the Debian image against a database of 100,000+ OSV advisories.

    .venv/bin/python benchmarks/bench_scan.py [-n 100000] [--rounds 5] [--keep DIR] [--no-engine]

Generates OSV-shaped records (Debian:12 / Debian:11 / Alpine / PyPI / npm; the source packages
of garrison-test/debian:12 among the names, with fixes below, at and above their installed
versions, epochs, tildes, several ranges), zips them like OSV's ``all.zip``, imports the zip
through ``VulnDB.import_path`` and times ``VulnDB.match`` on the image's package list
(captured with dpkg-query in tests/scan/data/osv_debian12_dpkg_query.txt). Then, unless
``--no-engine``, it times the whole uncached scan of garrison-test/debian:12 on a private
engine — the image read from the engine's export, its inventory, the matching and the image
compliance checks — as ``garrison scan image`` does it. Goal: ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from garrison.devengine import DEBIAN, EngineConfig, PrivateEngine
from garrison.devengine.images import cache_dir_from_env, ensure_image
from garrison.scan.scanner import Scanner
from garrison.scan.types import OSInfo, Package
from garrison.scan.vulndb import VulnDB

PACKAGES = Path(__file__).parent.parent / "tests/scan/data/osv_debian12_dpkg_query.txt"
BOOKWORM = OSInfo("debian", "12.15")
GOAL_S = 2.0
VECTORS = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:L/I:N/A:N",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
]


def image_packages() -> list[Package]:
    rows = (line.split() for line in PACKAGES.read_text().splitlines())
    return [Package("Debian", name, ver, src, src_ver) for name, ver, src, src_ver in rows]


def debian_fix(rnd: random.Random, installed: str) -> str:
    """A fixed version below, at or above the installed one (most below, as in real data)."""
    roll = rnd.random()
    if roll < 0.05:
        return installed + "+deb12u99"  # above: a finding
    if roll < 0.10:
        return installed
    return rnd.choice(["0.1-1", "1:0.0.1-1", installed.split("-", maxsplit=1)[0] + "~rc1-1"])


def record(
    rid: str, ecosystem: str, name: str, events: list[dict[str, str]], rnd: random.Random
) -> dict[str, Any]:
    return {
        "id": rid,
        "schema_version": "1.6.0",
        "modified": "2024-06-01T00:00:00Z",
        "published": "2024-05-01T00:00:00Z",
        "aliases": [rid.replace("BENCH", "CVE")],
        "summary": f"{name}: synthetic advisory",
        "severity": [{"type": "CVSS_V3", "score": rnd.choice(VECTORS)}],
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }


def generic_events(rnd: random.Random, ecosystem: str) -> list[dict[str, str]]:
    a, b = rnd.randint(0, 9), rnd.randint(0, 30)
    fixed = f"{a}.{b}.{rnd.randint(1, 9)}"
    if ecosystem == "Alpine":
        fixed += f"-r{rnd.randint(0, 9)}"
    if ecosystem.startswith("Debian"):
        fixed += f"-{rnd.randint(1, 5)}"
    if rnd.random() < 0.3:  # two ranges' worth of events
        return [
            {"introduced": "0"},
            {"fixed": f"{a}.{b}"},
            {"introduced": f"{a + 1}.0"},
            {"fixed": f"{a + 1}.{b}.1"},
        ]
    return [{"introduced": "0"}, {"fixed": fixed}]


def generate(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    sources = {(p.match_name, p.match_version) for p in image_packages()}
    records = []
    for name, installed in sorted(sources):  # ~30 advisories per real source package
        for _ in range(30):
            events = [{"introduced": "0"}, {"fixed": debian_fix(rnd, installed)}]
            eco = rnd.choice(["Debian:12", "Debian:12", "Debian:11"])
            records.append(record(f"BENCH-{len(records)}", eco, name, events, rnd))
    ecosystems = ["Debian:12", "Debian:11", "Alpine:v3.19", "PyPI", "npm"]
    while len(records) < n:
        eco = rnd.choice(ecosystems)
        name = f"pkg{rnd.randint(0, n // 4)}"
        records.append(record(f"BENCH-{len(records)}", eco, name, generic_events(rnd, eco), rnd))
    return records


def write_zip(records: list[dict[str, Any]], path: Path) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for rec in records:
            archive.writestr(f"{rec['id']}.json", json.dumps(rec))


def timed(label: str, func: Any, *args: Any) -> Any:
    start = time.perf_counter()
    result = func(*args)
    print(f"{label}: {time.perf_counter() - start:.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-n", type=int, default=100_000, help="advisories to generate")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="keep the database in this folder")
    parser.add_argument("--no-engine", action="store_true", help="time the matching only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        records = timed(f"generate {args.n} records", generate, args.n)
        timed("write all.zip", write_zip, records, folder / "all.zip")
        db = VulnDB(folder / "vulndb.sqlite")
        report = timed("import", db.import_path, folder / "all.zip")
        per_ecosystem = db.status()["ecosystems"]
        print(f"  imported {report.imported}, invalid {report.invalid}; {per_ecosystem}")
        packages = image_packages()
        times, findings = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            findings = db.match(packages, BOOKWORM)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        verdict = "OK" if median <= GOAL_S else "OVER GOAL"
        print(
            f"scan of {len(packages)} packages against {report.imported} advisories: "
            f"median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
            f"over {args.rounds} rounds "
            f"(goal ≤ {GOAL_S:.0f} s: {verdict}); {len(findings)} findings"
        )
        if not args.no_engine:
            whole_scan(db, args.rounds)


def whole_scan(db: VulnDB, rounds: int) -> None:
    """The uncached scan, end to end, on a private engine of its own."""
    with tempfile.TemporaryDirectory(prefix="gbs-", dir="/var/tmp") as state:
        engine = PrivateEngine(EngineConfig(state_dir=Path(state))).start()
        try:
            client = engine.client()
            ensure_image(client, DEBIAN, cache_dir_from_env())
            scanner = Scanner.for_docker(client, db)
            times, result = [], None
            for _ in range(rounds):
                start = time.perf_counter()
                result = scanner.scan(DEBIAN.name, refresh=True)
                times.append(time.perf_counter() - start)
            client.close()
        finally:
            engine.stop()
    median = statistics.median(times)
    verdict = "OK" if median <= GOAL_S else "OVER GOAL"
    counts = (len(result.inventory.packages), len(result.findings)) if result else (0, 0)
    print(
        f"whole scan of {DEBIAN.name} ({counts[0]} packages, {counts[1]} findings): "
        f"median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms over {rounds} rounds "
        f"(goal ≤ {GOAL_S:.0f} s: {verdict})"
    )


if __name__ == "__main__":
    main()
