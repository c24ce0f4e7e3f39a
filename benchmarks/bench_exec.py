"""Exec storm in a Debian container: no listener vs ExecSensor learning vs ExecSensor active.

    .venv/bin/python benchmarks/bench_exec.py --engine-dir /var/tmp/ge-NAME [-n 2000] [--rounds 5]

Each round runs the three modes back to back (interleaved, so machine noise hits all alike)
and times ``for i in 1..N: /usr/bin/true $i`` inside the container with bash's
$EPOCHREALTIME. Modes:

- none:     no fanotify listener.
- learning: ExecSensor with a judge that always answers ALLOW: every exec is a round trip
            into Python (the loader's event is ignored by the kernel after the first).
- active:   ExecSensor with a judge that answers ALLOW_ALWAYS (a learned workload): after the
            first exec the kernel skips /usr/bin/true through an ignore mark.

Ratios are medians of per-round ratios against "none" of the same round. "seen/made" counts
the ProcessEvents of /usr/bin/true with the loop's arguments.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from garrison.devengine import EngineConfig, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import ProcessEvent, Verdict
from garrison.sensors.exec_sensor import ExecSensor
from support import write_mode_ratios

IMAGE = "garrison-test/debian:12"
GOALS = {"learning": 1.30, "active": 1.03}


def storm(container: Any, n: int) -> float:
    loop = f"for i in $(seq 1 {n}); do /usr/bin/true $i; done"
    script = f"s=$EPOCHREALTIME; {loop}; echo $s $EPOCHREALTIME"
    result = container.exec_run(["bash", "-c", script])
    start, end = (float(x) for x in result.output.split())
    return end - start


def run_mode(container: Any, info: ContainerInfo, mode: str, n: int) -> tuple[float, int]:
    if mode == "none":
        return storm(container, n), 0
    seen: list[ProcessEvent] = []
    verdict = Verdict.ALLOW if mode == "learning" else Verdict.ALLOW_ALWAYS
    judge: Callable[[ProcessEvent], Verdict] = lambda event: verdict  # noqa: E731
    sensor = ExecSensor(judge, seen.append)
    sensor.start()
    sensor.watch(info)
    try:
        elapsed = storm(container, n)
    finally:
        sensor.stop()
    wanted = {str(i) for i in range(1, n + 1)}
    made = [e for e in seen if e.path == "/usr/bin/true" and e.argv[1:2] and e.argv[1] in wanted]
    return elapsed, len(made)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-dir", type=Path, default=Path("/var/tmp/garrison-engine"))
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    ensure_packages()
    engine = PrivateEngine(EngineConfig(state_dir=args.engine_dir, keep=True)).start()
    client = engine.client()
    ensure_all(client, cache_dir_from_env())
    container = client.containers.run(IMAGE, ["sleep", "3600"], detach=True)
    try:
        container.reload()
        merged = container.attrs["GraphDriver"]["Data"]["MergedDir"]
        info = ContainerInfo(container.id, container.name, IMAGE, "", merged_dir=merged)
        results = measure(container, info, args.n, args.rounds)
        report(results, args.n)
        write_mode_ratios(args.json_out, results, args.n, ("learning", "active"))
    finally:
        container.remove(force=True)
        client.close()
        if not engine.reused:
            engine.stop()


def measure(container: Any, info: ContainerInfo, n: int, rounds: int) -> list[dict[str, Any]]:
    storm(container, 100)  # warm the page cache and the container
    results = []
    for r in range(rounds):
        row = {mode: run_mode(container, info, mode, n) for mode in ("none", "learning", "active")}
        print(f"round {r + 1}: " + "  ".join(f"{m} {t:.3f}s seen {s}" for m, (t, s) in row.items()))
        results.append(row)
    return results


def report(results: list[dict[str, Any]], n: int) -> None:
    print(f"\n{n} execs of /usr/bin/true per run, {len(results)} interleaved rounds")
    base = statistics.median(r["none"][0] for r in results)
    print(f"none      median {base:.3f} s  ({n / base:.0f} exec/s)")
    for mode in ("learning", "active"):
        ratio = statistics.median(r[mode][0] / r["none"][0] for r in results)
        ratios = " ".join(f"{r[mode][0] / r['none'][0]:.2f}" for r in results)
        seen = min(r[mode][1] for r in results)
        ok = "ok" if ratio <= GOALS[mode] else "over goal"
        print(f"{mode:9} ratio {ratio:.3f} (goal <= {GOALS[mode]:.2f}, {ok}; rounds {ratios})")
        note = "" if mode == "learning" else "  (the rest skipped by the kernel's ignore mark)"
        print(f"{'':9} execs seen / execs made: {seen}/{n}{note}")


if __name__ == "__main__":
    main()
