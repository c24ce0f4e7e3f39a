"""Every benchmark, one after the other, and one table of figures beside their goals.

    sudo benchmarks/run [--size standard|tiny] [--only NAME,...] [--out DIR] [--docs]

Each benchmark script runs as a process of its own (``--json-out`` into ``DIR/raw/``) at the
size chosen: ``standard`` is what the figures of docs/performance.md come from (under 15
minutes on 2 cores), ``tiny`` only checks that everything runs (the suite's smoke test; its
figures mean nothing). A benchmark that fails is named in the results with its exit code and
the tail of its output; the others still run.

Written to ``DIR`` (default ``benchmarks/results``): ``latest.json`` (the machine, the commit,
every figure with its goal, spread and verdict, and each benchmark's raw figures),
``latest.md`` (the table), and one line appended to ``history.jsonl`` per run. ``--docs`` also
puts the table into docs/performance.md. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from figures import BENCHES, Figure, figures_of
from support import remove_state

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOCS = ROOT / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


@dataclass
class Outcome:
    name: str
    exit_code: int
    seconds: float
    tail: str = ""
    figures: list[Figure] = field(default_factory=list)
    raw: dict[str, Any] | None = None


def run_bench(name: str, size: str, raw_dir: Path, engine_dir: Path | None) -> Outcome:
    bench = BENCHES[name]
    out = raw_dir / f"{name}.json"
    out.unlink(missing_ok=True)
    argv = [sys.executable, str(HERE / bench.script), *bench.sizes[size], "--json-out", str(out)]
    scratch = None
    if bench.needs_engine_dir and engine_dir is None:
        scratch = engine_dir = Path(tempfile.mkdtemp(prefix=f"gbr-{name}-", dir="/var/tmp"))
    if engine_dir is not None and (bench.shares_engine or bench.needs_engine_dir):
        argv += ["--engine-dir", str(engine_dir)]
    argv += vulndb_args(bench.vulndb, raw_dir / "vulndb")
    print(f"== {name}: {' '.join(argv[1:])}", flush=True)
    start = time.monotonic()
    log = raw_dir / f"{name}.log"
    with log.open("wb") as sink:
        done = subprocess.run(argv, cwd=HERE, stdout=sink, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - start
    if scratch is not None:
        remove_state(scratch)
    text = log.read_text(errors="replace")
    print(text, end="", flush=True)
    outcome = Outcome(name, done.returncode, seconds, text[-1500:] if done.returncode else "")
    if done.returncode == 0 and out.exists():
        outcome.raw = json.loads(out.read_text())
        outcome.figures = figures_of(name, outcome.raw)
    return outcome


def tracing_mounts() -> set[str]:
    """Where tracefs and debugfs are mounted now."""
    found = set()
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] in ("tracefs", "debugfs"):
            found.add(fields[1])
    return found


def unmount_new(before: set[str]) -> None:
    """Unmount what a tracer mounted during the run (bpftrace mounts tracefs): this machine
    boots without it, and a mount left behind would hide that from the suite."""
    for path in sorted(tracing_mounts() - before, key=len, reverse=True):
        subprocess.run(["umount", "-l", path], check=False)
        print(f"unmounted {path}, which a benchmark mounted", flush=True)


def vulndb_args(role: str, folder: Path) -> list[str]:
    """One generated database of 100,000 advisories for the run: the scan benchmark makes
    and keeps it, the gate's uses it (when the scan's ran first) instead of making its own."""
    if role == "keep":
        shutil.rmtree(folder, ignore_errors=True)
        return ["--keep", str(folder)]
    if role == "use" and (folder / "vulndb.sqlite").exists():
        return ["--vulndb", str(folder)]
    return []


def merged(ran: list[dict[str, Any]], previous: Path, size: str) -> list[dict[str, Any]]:
    """``--only``: the benchmarks run now, and the others as the previous run of the same
    size left them (each keeps its own date and commit), in the usual order."""
    try:
        before = json.loads(previous.read_text())
    except (OSError, ValueError):
        return ran
    if before.get("size") != size:
        return ran
    by_name = {b["name"]: b for b in before.get("benchmarks", [])}
    for b in by_name.values():
        b.setdefault("date", before.get("date"))
        b.setdefault("commit", before.get("commit"))
    by_name.update({b["name"]: b for b in ran})
    return [by_name[name] for name in BENCHES if name in by_name]


def machine() -> dict[str, Any]:
    mem = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    return {
        "cpus": os.cpu_count(),
        "memoryGiB": round(mem / (1 << 20), 1),
        "kernel": platform.release(),
        "os": os_name(),
        "python": platform.python_version(),
    }


def os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def table(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        f"Run of {doc['date']} on commit `{doc['commit']}`, size `{doc['size']}`, "
        f"{doc['seconds'] / 60:.1f} minutes; {m['cpus']} cores, {m['memoryGiB']} GiB, "
        f"{m['os']}, kernel {m['kernel']}.",
        "",
        "| figure | measured | goal | verdict | spread |",
        "|---|---|---|---|---|",
    ]
    for fig in doc["figures"]:
        lines.append(
            f"| {fig['label']} | {shown(fig['value'], fig['unit'])} | "
            f"{goal_text(fig)} | {fig['verdict']} | {fig['spread']} |"
        )
    older = sorted(
        {(b["date"], b["commit"]) for b in doc["benchmarks"]} - {(doc["date"], doc["commit"])}
    )
    for date, sha in older:
        names = ", ".join(
            b["name"] for b in doc["benchmarks"] if (b["date"], b["commit"]) == (date, sha)
        )
        lines.append(f"\nFrom the run of {date} on `{sha}`: {names}.")
    failed = [b for b in doc["benchmarks"] if b["exitCode"] != 0]
    for bench in failed:
        lines.append(f"\n`{bench['name']}` failed (exit {bench['exitCode']}): see its log.")
    return "\n".join(lines) + "\n"


def shown(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "%":
        return f"{value:.2%}"
    if unit in ("x", "ratio"):
        return f"{value:.3f}"
    if unit == "execs":
        return f"{value:.0f}"
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def goal_text(fig: dict[str, Any]) -> str:
    if fig["goal"] is None:
        return ""
    sign = "≤" if fig["better"] == "lower" else "≥"
    return f"{sign} {shown(fig['goal'], fig['unit'])}"


def update_docs(text: str) -> None:
    doc = DOCS.read_text()
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOCS} has no {START} … {END} section")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{START}\n{text}{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=("standard", "tiny"), default="standard")
    parser.add_argument("--only", help=f"some of {','.join(BENCHES)}")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--engine-dir",
        type=Path,
        help="one engine for the benchmarks that take --engine-dir (default: each starts its own)",
    )
    parser.add_argument("--docs", action="store_true", help="put the table in docs/performance.md")
    args = parser.parse_args()
    names = list(BENCHES) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose among {', '.join(BENCHES)}")
    raw_dir = args.out / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    mounted = tracing_mounts()
    try:
        outcomes = [run_bench(name, args.size, raw_dir, args.engine_dir) for name in names]
    finally:
        unmount_new(mounted)
    shutil.rmtree(raw_dir / "vulndb", ignore_errors=True)  # 100,000 advisories: 140 MB
    now, head = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), commit()
    ran = [
        {
            "name": o.name,
            "date": now,
            "commit": head,
            "exitCode": o.exit_code,
            "seconds": round(o.seconds, 1),
            "tail": o.tail,
            "raw": o.raw,
        }
        for o in outcomes
    ]
    benchmarks = merged(ran, args.out / "latest.json", args.size) if args.only else ran
    doc = {
        "date": now,
        "commit": head,
        "size": args.size,
        "seconds": time.monotonic() - start,
        "machine": machine(),
        "figures": [
            asdict(f) for b in benchmarks if b["raw"] for f in figures_of(b["name"], b["raw"])
        ],
        "benchmarks": benchmarks,
    }
    (args.out / "latest.json").write_text(json.dumps(doc, indent=2) + "\n")
    text = table(doc)
    (args.out / "latest.md").write_text(text)
    summary = {k: doc[k] for k in ("date", "commit", "size", "seconds", "machine", "figures")}
    with (args.out / "history.jsonl").open("a") as history:
        history.write(json.dumps(summary) + "\n")
    if args.docs:
        update_docs(text)
    print("\n" + text)
    sys.exit(1 if any(o.exit_code for o in outcomes) else 0)


if __name__ == "__main__":
    main()
