"""The defender's own footprint: memory and CPU with 0, 10, 50 and 100 idle containers, while
it learns a busy container, and the console store's size per million audits (issue 20).

    sudo .venv/bin/python benchmarks/bench_footprint.py [--containers 0,10,50,100]
        [--idle-seconds 30] [--audits 100000] [--only idle,busy,store] [--engine-dir DIR]
        [--json-out FILE]

The real defender (``python -m garrison run``, the default watchdog, a fresh data dir each
time) on a private engine. ``garrison run`` is two processes: the watchdog (which also serves
the console, 127.0.0.1 on a free port, and sends alerts) and the defender, its child. Figures
for each, from ``/proc/PID/status`` (VmRSS; VmHWM, the peak) and ``/proc/PID/stat`` (CPU):

- idle: N busybox containers (``sleep``) started first; once the defender watches all N, a
  settle of 10 s, then CPU over ``--idle-seconds`` as a share of one core, and VmRSS at the end.
  Goal at 50: defender RSS ≤ 60 MiB, CPU ≤ 1 % of a core.
- busy: one garrison-test/debian:12 container running ``ls``, ``cat`` and ``sha256sum`` in a
  loop (about 100 execs a second, writes under /tmp) while the defender learns its model; RSS and
  CPU over ``--idle-seconds``.
- store: ``--audits`` distinct audits (each its own process path and message: no two are
  counted as one) written in batches of 500 to a fresh SQLite store, as the defender writes
  them; the file's size (database + WAL after a checkpoint) scaled to a million.

Nothing is asserted: a table, and JSON with --json-out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench_defender import proc_status
from bench_enforce import Defender
from bench_enforce import Lab as EnforceLab
from garrison.audit.record import Audit
from garrison.devengine import BUSYBOX, DEBIAN, PrivateEngine, ensure_all
from garrison.devengine.images import cache_dir_from_env
from garrison.store import SQLiteStore
from support import cpu_seconds, defender_pid, free_port, parts_option, run_benchmark

PARTS = ("idle", "busy", "store")
SETTLE = 10.0
GOAL_RSS_MIB = 60.0
GOAL_CPU = 0.01
BUSY_LOOP = (
    "while true; do ls / > /dev/null; cat /etc/os-release > /dev/null; "
    "sha256sum /etc/passwd > /tmp/sum; sleep 0.02; done"
)


def counts(text: str) -> list[int]:
    try:
        found = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError("a comma-separated list of counts") from exc
    if not found or min(found) < 0:
        raise argparse.ArgumentTypeError("a comma-separated list of counts, 0 or more")
    return found


def console_args() -> tuple[str, ...]:
    """The console on, as ``garrison run`` serves it by default, on a port free here."""
    return ("--console-address", f"127.0.0.1:{free_port()}")


def sample(defender: Defender, seconds: float) -> dict[str, Any]:
    """CPU shares over ``seconds`` and memory at the end, of the defender and its watchdog."""
    status = defender.status()
    pids = {"defender": defender_pid(status), "watchdog": defender.pid}
    before = {who: cpu_seconds(pid, children=False) for who, pid in pids.items()}
    time.sleep(seconds)
    doc: dict[str, Any] = {}
    for who, pid in pids.items():
        vm = proc_status(pid)
        doc[who] = {
            "cpu": (cpu_seconds(pid, children=False) - before[who]) / seconds,
            "rssMiB": vm["VmRSS"] / 1024,
            "hwmMiB": vm["VmHWM"] / 1024,
        }
    return doc


def watched_count(defender: Defender, n: int) -> None:
    defender.wait(lambda s: s.get("containers", 0) >= n, f"watch {n} containers", timeout=300)


def idle(lab: EnforceLab, n: int) -> dict[str, Any]:
    containers = []
    try:
        for _ in range(n):
            containers.append(
                lab.client.containers.run(BUSYBOX.name, ["sleep", "3600"], detach=True)
            )
        data = lab.work / f"idle-{n}"
        with Defender(lab, data, "1h", console_args(), status_interval=None) as defender:
            watched_count(defender, n)
            time.sleep(SETTLE)
            return {"containers": n, **sample(defender, lab.args.idle_seconds)}
    finally:
        for container in containers:
            container.remove(force=True)


def busy(lab: EnforceLab) -> dict[str, Any]:
    container = lab.client.containers.run(DEBIAN.name, ["bash", "-c", BUSY_LOOP], detach=True)
    try:
        with Defender(
            lab, lab.work / "busy", "1h", console_args(), status_interval=None
        ) as defender:
            watched_count(defender, 1)
            time.sleep(SETTLE)
            doc = sample(defender, lab.args.idle_seconds)
            events = (defender.status().get("events") or {}).get("handled")
            return {**doc, "eventsHandled": events}
    finally:
        container.remove(force=True)


def audit(i: int) -> Audit:
    """One distinct audit shaped like a real one (a refused exec in a named container)."""
    return Audit(
        time=1_700_000_000.0 + i,
        hostname="bench-host",
        type="processes",
        attackType="unexpectedProcess",
        effect="prevent",
        msg=f"/usr/local/bin/tool-{i} launched from /usr/bin/bash and is not in the model",
        containerId=f"{i % 50:064x}",
        containerName=f"app-{i % 50}",
        imageName="registry.example/app:1.4.2",
        imageId=f"sha256:{i % 7:064x}",
        ruleName="unknown programs refused",
        pid=1000 + i % 30000,
        processPath=f"/usr/local/bin/tool-{i}",
        parentPath="/usr/bin/bash",
        command=f"tool-{i} --serve --port 8080",
        user="root",
        profileId=f"sha256:{i % 7:064x}",
        labels={"app": "shop", "tier": "web"},
    )


def store_size(work: Path, n: int) -> dict[str, Any]:
    path = work / "store" / "garrison.db"
    store = SQLiteStore(path)
    try:
        start = time.perf_counter()
        for first in range(0, n, 500):
            store.add_audits([audit(i) for i in range(first, min(n, first + 500))])
        seconds = time.perf_counter() - start
    finally:
        store.close()
    size = sum(p.stat().st_size for p in path.parent.iterdir() if p.name.startswith(path.name))
    return {
        "audits": n,
        "bytes": size,
        "MiBPerMillion": size / n * 1_000_000 / (1 << 20),
        "auditsPerSecond": n / seconds,
    }


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    client = engine.client()
    ensure_all(client, cache_dir_from_env())
    lab = EnforceLab(client, engine.base_url, work, args)
    doc: dict[str, Any] = {"idleSeconds": args.idle_seconds}
    if "idle" in args.only:
        doc["idle"] = [idle(lab, n) for n in args.containers]
    if "busy" in args.only:
        doc["busy"] = busy(lab)
    if "store" in args.only:
        doc["store"] = store_size(work, args.audits)
    return doc


def report(doc: dict[str, Any]) -> None:
    print(
        f"{'case':<22} {'defender RSS':>12} {'peak':>7} {'cpu':>6}   "
        f"{'watchdog RSS':>12} {'cpu':>6}"
    )
    rows = [(f"idle, {d['containers']} containers", d) for d in doc.get("idle") or []]
    if doc.get("busy"):
        rows.append(("learning a busy one", doc["busy"]))
    for label, d in rows:
        mine, dog = d["defender"], d["watchdog"]
        print(
            f"{label:<22} {mine['rssMiB']:>8.1f} MiB {mine['hwmMiB']:>7.1f} {mine['cpu']:>6.2%}"
            f"   {dog['rssMiB']:>8.1f} MiB {dog['cpu']:>6.2%}"
        )
    print(
        f"goal with 50 idle containers: defender RSS <= {GOAL_RSS_MIB:.0f} MiB, "
        f"CPU <= {GOAL_CPU:.0%} of a core"
    )
    if doc.get("store"):
        s = doc["store"]
        print(
            f"store: {s['audits']} audits in {s['bytes'] / (1 << 20):.1f} MiB = "
            f"{s['MiBPerMillion']:.0f} MiB per million ({s['auditsPerSecond']:.0f} audits/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=counts, default=[0, 10, 50, 100])
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--audits", type=int, default=100_000)
    parser.add_argument("--only", type=parts_option(PARTS), default=frozenset(PARTS))
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), "gbf", run_all, report)


if __name__ == "__main__":
    main()
