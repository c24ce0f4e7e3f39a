"""Real services under Garrison: nginx, and a Python web app doing file I/O and a subprocess
per request, loaded with wrk from inside the container's network namespace (issue 20).

    sudo .venv/bin/python benchmarks/bench_workload.py [--seconds 10] [--rounds 3]
        [--connections 16] [--only nginx,pyapp] [--engine-dir DIR] [--json-out FILE]

Each workload is one container on a private engine (``--bridge=none``: loopback only):

- nginx: garrison-test/nginx serving its default page on 127.0.0.1:80 (keep-alive).
- pyapp: garrison-test/debian:12's python3, an HTTP/1.1 keep-alive server of a few lines
  (threads, sockets: python3-minimal has no http.server) that, per request, writes 4 KiB to a
  file under /tmp, reads it back and runs ``/usr/bin/true`` as a subprocess.

wrk (Debian's ``wrk``) runs on the host inside the container's network namespace (``nsenter
--net``), so the traffic stays on the container's loopback; its own processes are the host's,
not the container's, so Garrison does not watch them. Modes, each a real ``garrison run``
(a child process), rotated from round to round:

- none: no defender;
- learning: a fresh store, learning period 1 h;
- active: a store whose model of the image learned this very load (a short learning period
  while wrk ran, then active);
- prevent: the active store, with a rule refusing unknown programs and writes under /etc
  (``processes.effect: prevent``, ``filesystem.denied: {effect: prevent, paths: [/etc]}``).

Each run: wrk 2 s (warm-up, not counted), then ``--seconds`` measured; requests per second and
p99 latency as wrk reports them, and the defender's CPU over the measured run. A mode's ratio
is the median of its per-round ratios to the same round's "none". Goal: ≥ 0.97 of the baseline
throughput. Nothing is asserted: a table, and JSON with --json-out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_enforce import BenchError, Defender, garrison
from bench_enforce import Lab as EnforceLab
from garrison.devengine import DEBIAN, NGINX, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.policy import load_rules_file
from support import cpu_seconds, parts_option, run_benchmark

PARTS = ("nginx", "pyapp")
MODES = ("none", "learning", "active", "prevent")
GOAL = 0.97
WARMUP = 2
PORT = {"nginx": 80, "pyapp": 8080}
IMAGE = {"nginx": NGINX.name, "pyapp": DEBIAN.name}
THREADS = 2
PYAPP = r"""
import os, socket, subprocess, threading
BODY = b"x" * 4096
def serve(conn, n):
    path = f"/tmp/req-{n}"
    with conn:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            _, buf = buf.split(b"\r\n\r\n", 1)
            with open(path, "wb") as f:
                f.write(BODY)
            with open(path, "rb") as f:
                data = f.read()
            subprocess.run(["/usr/bin/true"], check=True)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            conn.sendall(head + data)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 8080))
server.listen(128)
n = 0
while True:
    conn, _ = server.accept()
    n += 1
    threading.Thread(target=serve, args=(conn, n), daemon=True).start()
"""


def rules(image: str) -> str:
    return (
        "rules:\n  - name: bench - unknown programs and /etc writes refused\n"
        f'    scope: [{{images: ["{image}"]}}]\n'
        "    processes:\n      effect: prevent\n"
        "    filesystem:\n      denied: {effect: prevent, paths: [/etc]}\n"
    )


@dataclass
class Run:
    rps: float
    p99_ms: float
    cpu: float | None = None  # the defender's CPU seconds over the measured run


@dataclass
class Workload:
    name: str
    container: Any
    pid: int
    runs: dict[str, list[Run]] = field(default_factory=dict)
    active_dir: Path | None = None


# -- wrk ---------------------------------------------------------------------------------------


def wrk(load: Workload, seconds: int, connections: int) -> Run:
    url = f"http://127.0.0.1:{PORT[load.name]}/"
    argv = ["nsenter", f"--net=/proc/{load.pid}/ns/net", "wrk", f"-t{THREADS}"]
    argv += [f"-c{connections}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> Run:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
    if rps is None or p99 is None:
        raise BenchError(f"wrk printed no rate or p99:\n{text}")
    if errors:
        raise BenchError(f"wrk saw errors: {errors.group(0)}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return Run(float(rps.group(1)), float(p99.group(1)) * scale)


def measured(load: Workload, args: argparse.Namespace, defender: Defender | None) -> Run:
    wrk(load, WARMUP, args.connections)
    cpu = cpu_seconds(defender.pid) if defender else 0.0
    run = wrk(load, args.seconds, args.connections)
    if defender:
        run.cpu = cpu_seconds(defender.pid) - cpu
    return run


# -- the workloads -----------------------------------------------------------------------------


def start_workload(lab: EnforceLab, name: str) -> Workload:
    if name == "nginx":
        container = lab.client.containers.run(
            NGINX.name, detach=True, name=f"gbw-nginx-{os.getpid()}"
        )
    else:
        argv = ["python3", "-c", PYAPP]
        container = lab.client.containers.run(
            DEBIAN.name, argv, detach=True, name=f"gbw-pyapp-{os.getpid()}"
        )
    container.reload()
    load = Workload(name, container, int(container.attrs["State"]["Pid"]))
    deadline = time.monotonic() + 30
    while True:
        try:
            wrk(load, 1, THREADS)
            return load
        except BenchError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def defender_for(lab: EnforceLab, load: Workload, mode: str, rnd: int) -> Defender:
    if mode == "learning":
        return Defender(lab, lab.work / f"{load.name}-learning-{rnd}", "1h", status_interval=None)
    assert load.active_dir is not None
    return Defender(lab, load.active_dir, "1h", status_interval=None)


def run_mode(lab: EnforceLab, load: Workload, mode: str, rnd: int) -> Run:
    if mode == "none":
        return measured(load, lab.args, None)
    defender = defender_for(lab, load, mode, rnd)
    with defender:
        defender.wait_watching(load.container.name)
        if mode in ("active", "prevent"):
            apply_rules(defender, load, mode == "prevent")
        return measured(load, lab.args, defender)


def apply_rules(defender: Defender, load: Workload, prevent: bool) -> None:
    path = defender.data_dir / "rules.yaml"
    path.write_text(rules(IMAGE[load.name]) if prevent else "rules: []\n")
    garrison("rules", "apply", "-f", str(path), "--data-dir", str(defender.data_dir))
    digest = load_rules_file(path).digest()[:12]
    defender.wait(lambda s: s.get("rules") == digest, f"take rules {digest}")


def prepare_active(lab: EnforceLab, load: Workload) -> None:
    """A store whose model of the image learned the load, and is active now."""
    data = lab.work / f"{load.name}-active"
    period = lab.args.learn_seconds
    with Defender(lab, data, f"{period}s") as defender:
        defender.wait_watching(load.container.name)
        wrk(load, 5, lab.args.connections)
        deadline = time.monotonic() + period + 90
        while model_state(data, IMAGE[load.name]) != "active":
            if time.monotonic() > deadline:
                raise BenchError(f"the model of {IMAGE[load.name]} did not turn active")
            time.sleep(0.5)
    load.active_dir = data


def model_state(data: Path, image: str) -> str:
    models = json.loads(garrison("models", "list", "--json", "--data-dir", str(data)))
    return next((str(m["state"]) for m in models if m.get("imageName") == image), "none")


def bench_workload(lab: EnforceLab, name: str) -> Workload:
    load = start_workload(lab, name)
    try:
        prepare_active(lab, load)
        for rnd in range(lab.args.rounds):
            order = MODES[rnd % len(MODES) :] + MODES[: rnd % len(MODES)]
            for mode in order:
                load.runs.setdefault(mode, []).append(run_mode(lab, load, mode, rnd))
    finally:
        load.container.remove(force=True)
    return load


# -- figures -----------------------------------------------------------------------------------


def figures(load: Workload, seconds: int) -> dict[str, Any]:
    base = load.runs["none"]
    doc: dict[str, Any] = {}
    for mode, runs in load.runs.items():
        ratios = [run.rps / none.rps for run, none in zip(runs, base, strict=True)]
        cpus = [r.cpu for r in runs if r.cpu is not None]
        doc[mode] = {
            "rps": statistics.median(r.rps for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "ratio": statistics.median(ratios),
            "ratios": ratios,
            "defender_cpu_share": statistics.median(cpus) / seconds if cpus else None,
        }
    return doc


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    ensure_packages(("wrk",))
    client = engine.client()
    ensure_all(client, cache_dir_from_env())
    lab = EnforceLab(client, engine.base_url, work, args)
    doc: dict[str, Any] = {"seconds": args.seconds, "rounds": args.rounds, "goal": GOAL}
    doc["connections"] = args.connections
    for name in PARTS:
        if name in args.only:
            doc[name] = figures(bench_workload(lab, name), args.seconds)
    return doc


def report(doc: dict[str, Any]) -> None:
    print(
        f"wrk {THREADS} threads, {doc['connections']} connections, {doc['seconds']} s a run, "
        f"{doc['rounds']} rounds; ratio = requests/s over the same round's none"
    )
    print(f"{'workload':<8} {'mode':<9} {'req/s':>9} {'p99 ms':>8} {'ratio':>6} {'cpu':>6}  goal")
    for name in PARTS:
        for mode, fig in (doc.get(name) or {}).items():
            cpu = fig["defender_cpu_share"]
            cpu_text = "-" if cpu is None else f"{cpu:.0%}"
            goal = "" if mode == "none" else ("met" if fig["ratio"] >= GOAL else "MISSED")
            print(
                f"{name:<8} {mode:<9} {fig['rps']:>9.0f} {fig['p99_ms']:>8.2f} "
                f"{fig['ratio']:>6.3f} {cpu_text:>6}  {goal}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--learn-seconds", type=int, default=20, help="the active model's learning period"
    )
    parser.add_argument("--only", type=parts_option(PARTS), default=frozenset(PARTS))
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), "gbw", run_all, report)


if __name__ == "__main__":
    main()
