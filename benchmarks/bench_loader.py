"""What the kernel's check of a loader run by hand costs: a storm of ``ld.so /usr/bin/true``.

    .venv/bin/python benchmarks/bench_loader.py [--engine-dir DIR] [-n 1000] [--rounds 5]

The BPF process events (``garrison.sensors.bpf``), as the defender runs them, in a Debian
container timing ``for i in 1..N: /lib64/ld-linux-x86-64.so.2 /usr/bin/true $i`` with bash's
$EPOCHREALTIME. Modes, interleaved per round (order rotated):

- none:    the programs not loaded;
- watched: the container watched, not armed — each loader run is sent to user space (as
           every one is, to be judged as the file it loads);
- armed:   the same, and armed with the names the loader may load (``loader_ok`` holding
           ``/usr/bin/true``): each run's argv is also scanned in the kernel and looked up.

Every run must exit 0 (an allowed name is never killed); ratios are medians of per-round
ratios against "none". Nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from garrison.devengine import EngineConfig, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.sensors.bpf.proc_events import BpfProcEvents
from support import write_mode_ratios

IMAGE = "garrison-test/debian:12"
LOADER = "/lib64/ld-linux-x86-64.so.2"
MODES = ("none", "watched", "armed")


def storm(container: Any, n: int) -> float:
    loop = f"for i in $(seq 1 {n}); do {LOADER} /usr/bin/true $i || exit 9; done"
    result = container.exec_run(["bash", "-c", f"s=$EPOCHREALTIME; {loop}; echo $s $EPOCHREALTIME"])
    if result.exit_code != 0:
        raise SystemExit(f"a loader run failed (exit {result.exit_code}): {result.output!r}")
    start, end = (float(x) for x in result.output.split())
    return end - start


def run_mode(container: Any, mode: str, n: int, cache: Path) -> tuple[float, int]:
    if mode == "none":
        return storm(container, n), 0
    sent: list[object] = []
    bpf = BpfProcEvents(sent.append, cache_dir=cache).start()
    try:
        bpf.watch(container.id, container.attrs["GraphDriver"]["Data"]["MergedDir"])
        if mode == "armed":
            bpf.kill_loaders(container.id, frozenset({"/usr/bin/true"}))
        elapsed = storm(container, n)
    finally:
        bpf.stop()
    return elapsed, len(sent)


def measure(container: Any, n: int, rounds: int) -> list[dict[str, tuple[float, int]]]:
    cache = Path(tempfile.mkdtemp(prefix="gbl-"))
    storm(container, 50)  # warm the page cache and the container
    results = []
    for r in range(rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        row = {mode: run_mode(container, mode, n, cache) for mode in order}
        print(f"round {r + 1}: " + "  ".join(f"{m} {t:.3f}s sent {s}" for m, (t, s) in row.items()))
        results.append(row)
    return results


def report(results: list[dict[str, tuple[float, int]]], n: int) -> None:
    print(f"\n{n} loader runs of /usr/bin/true per storm, {len(results)} interleaved rounds")
    base = statistics.median(r["none"][0] for r in results)
    print(f"none     median {base:.3f} s  ({n / base:.0f} runs/s)")
    for mode in MODES[1:]:
        ratios = [r[mode][0] / r["none"][0] for r in results]
        spread = " ".join(f"{x:.2f}" for x in ratios)
        sent = min(r[mode][1] for r in results)
        print(f"{mode:8} ratio {statistics.median(ratios):.3f} (rounds {spread}); sent {sent}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-dir", type=Path, default=Path("/var/tmp/garrison-engine"))
    parser.add_argument("-n", type=int, default=1000)
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
        results = measure(container, args.n, args.rounds)
        report(results, args.n)
        write_mode_ratios(args.json_out, results, args.n, MODES[1:])
    finally:
        container.remove(force=True)
        client.close()
        if not engine.reused:
            engine.stop()


if __name__ == "__main__":
    main()
