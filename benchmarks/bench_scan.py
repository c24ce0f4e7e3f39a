"""Scanning the Debian and nginx test images against a database of 100,000+ OSV advisories.

    .venv/bin/python benchmarks/bench_scan.py [-n 100000] [--rounds 5] [--cli-rounds 3]
        [--image debian --image nginx] [--keep DIR [--reuse]] [--no-engine] [--json-out FILE]

Generates OSV-shaped records (Debian:12 / Debian:11 / Alpine / PyPI / npm; the source packages
of garrison-test/debian:12 among the names, with fixes below, at and above their installed
versions, epochs, tildes, several ranges), zips them like OSV's ``all.zip``, imports the zip
through ``VulnDB.import_path`` and times ``VulnDB.match`` on the Debian image's package list
(captured with dpkg-query in tests/scan/data/osv_debian12_dpkg_query.txt). Then, unless
``--no-engine``, on a private engine of its own (state under /tmp) it times the whole scan of
each image — the image read from ``docker save``, its inventory, the matching and the image
compliance checks — two ways:

- warm: ``Scanner.scan(refresh=True)`` in this process, after one untimed scan of the image
  (imports done, the database's pages and the version caches warm), median of ``--rounds``;
- cold: ``garrison scan image NAME --json`` as a user runs it, a process of its own each time
  (its imports, the database opened, the report stored), median of ``--cli-rounds``.

Goal for a whole scan: ≤ 2 s. ``--keep DIR`` keeps the database in DIR (as a data folder:
``DIR/vulndb.sqlite``); with ``--reuse`` a database already there is used as it is.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from garrison.devengine import DEBIAN, NGINX, EngineConfig, PrivateEngine
from garrison.devengine.images import Recipe, cache_dir_from_env, ensure_image
from garrison.scan.scanner import Scanner
from garrison.scan.types import OSInfo, Package
from garrison.scan.vulndb import VulnDB

PACKAGES = Path(__file__).parent.parent / "tests/scan/data/osv_debian12_dpkg_query.txt"
BOOKWORM = OSInfo("debian", "12.15")
GOAL_S = 2.0
IMAGES = {"debian": DEBIAN, "nginx": NGINX}
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


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-n", type=int, default=100_000, help="advisories to generate")
    parser.add_argument("--rounds", type=int, default=5, help="matching and warm scans")
    parser.add_argument(
        "--cli-rounds", type=int, default=3, help="cold scans (`garrison scan image`); 0: none"
    )
    parser.add_argument(
        "--image", action="append", choices=sorted(IMAGES), help="repeatable; default: all"
    )
    parser.add_argument("--keep", type=Path, help="keep the database in this folder")
    parser.add_argument("--reuse", action="store_true", help="use the database in --keep as is")
    parser.add_argument("--no-engine", action="store_true", help="time the matching only")
    parser.add_argument("--json-out", type=Path, help="write the figures here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    doc: dict[str, Any] = {"advisories": args.n, "goal_s": GOAL_S}
    with tempfile.TemporaryDirectory(prefix="gbs-", dir="/tmp") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db = database(folder, args.n, reuse=args.reuse)
        doc["match_ms"] = time_matching(db, args.rounds)
        if not args.no_engine:
            recipes = {name: IMAGES[name] for name in args.image or sorted(IMAGES)}
            doc["images"] = whole_scans(db, folder, recipes, args.rounds, args.cli_rounds)
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")


def database(folder: Path, n: int, *, reuse: bool) -> VulnDB:
    """The advisories in ``folder/vulndb.sqlite``: generated and imported, or reused."""
    db = VulnDB.in_data_dir(folder)
    if reuse and db.exists():
        print(f"reusing {db.path}: {db.status()['ecosystems']}")
        return db
    records = timed(f"generate {n} records", generate, n)
    timed("write all.zip", write_zip, records, folder / "all.zip")
    report = timed("import", db.import_path, folder / "all.zip")
    print(f"  imported {report.imported}, invalid {report.invalid}; {db.status()['ecosystems']}")
    return db


def time_matching(db: VulnDB, rounds: int) -> list[float]:
    packages = image_packages()
    times, findings = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        findings = db.match(packages, BOOKWORM)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    verdict = "OK" if median <= GOAL_S else "OVER GOAL"
    print(
        f"matching {len(packages)} packages of {DEBIAN.name}: median {median * 1000:.0f} ms, "
        f"max {max(times) * 1000:.0f} ms over {rounds} rounds "
        f"(goal ≤ {GOAL_S:.0f} s: {verdict}); {len(findings)} findings"
    )
    return [t * 1000 for t in times]


def whole_scans(
    db: VulnDB, data_dir: Path, recipes: dict[str, Recipe], rounds: int, cli_rounds: int
) -> dict[str, Any]:
    """The uncached scan of each image, end to end, on a private engine of its own."""
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gbse-", dir="/tmp") as state:
        engine = PrivateEngine(EngineConfig(state_dir=Path(state))).start()
        try:
            client = engine.client()
            for recipe in recipes.values():
                ensure_image(client, recipe, cache_dir_from_env())
            scanner = Scanner.for_docker(client, db)
            for short, recipe in recipes.items():
                warm = warm_scans(scanner, recipe.name, rounds)
                cold = cli_scans(engine.base_url, data_dir, recipe.name, cli_rounds)
                figures[short] = {"image": recipe.name, "warm": seconds(warm)}
                figures[short]["cold"] = seconds(cold)
            client.close()
        finally:
            engine.stop()
    return figures


def warm_scans(scanner: Scanner, image: str, rounds: int) -> list[float]:
    result = scanner.scan(image, refresh=True)  # untimed: the warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = scanner.scan(image, refresh=True)
        times.append((time.perf_counter() - start) * 1000)
    counts = f"{len(result.inventory.packages)} packages, {len(result.findings)} findings"
    print_scan(f"whole scan of {image}, warm ({counts})", times)
    return times


def cli_scans(docker_host: str, data_dir: Path, image: str, rounds: int) -> list[float]:
    """``garrison scan image`` in a process of its own each time: its exit status is 0."""
    argv = [sys.executable, "-m", "garrison", "scan", "image", image, "--json"]
    argv += ["--docker-host", docker_host, "--data-dir", str(data_dir)]
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}\n{done.stderr.decode()}")
    if times:
        print_scan(f"whole scan of {image}, cold (`garrison scan image`, a process each)", times)
    return times


def seconds(times_ms: list[float]) -> dict[str, Any]:
    median = statistics.median(times_ms) / 1000 if times_ms else None
    return {"medianSeconds": median, "seconds": [t / 1000 for t in times_ms]}


def print_scan(label: str, times: list[float]) -> None:
    median = statistics.median(times)
    verdict = "OK" if median <= GOAL_S * 1000 else "OVER GOAL"
    print(
        f"{label}: median {median:.0f} ms, max {max(times):.0f} ms over {len(times)} rounds "
        f"(goal ≤ {GOAL_S:.0f} s: {verdict})"
    )


if __name__ == "__main__":
    main()
