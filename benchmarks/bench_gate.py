"""Time the authorization gate adds to ``docker create``, with a cached scan.

    .venv/bin/python benchmarks/bench_gate.py [-n 200] [--rounds 2]

One private engine (one state dir, images loaded once) is started alternately with and without
``--authorization-plugin``; each phase times ``POST /containers/create`` of the busybox image
(the container is removed after each, untimed). With the plugin, every create is judged for
real: image inspect and history through the daemon (and so through the plugin), the cached
scan of the image, both policies (a vulnerability block rule, a compliance rule blocking
privileged containers), and two audits written to a SQLite store. Goal: p50 added ≤ 15 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import docker

from garrison.devengine import BUSYBOX, EngineConfig, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.scan.gate import Gate, GateServer, ServerConfig, StoredPolicies, docker_containers
from garrison.scan.rules import save_policy
from garrison.scan.scanner import Scanner
from garrison.store import SQLiteStore

GOAL_MS = 15.0


def time_creates(client: docker.APIClient, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        created = client.create_container(BUSYBOX.name, "true")
        samples.append((time.perf_counter() - start) * 1000)
        client.remove_container(created["Id"], force=True)
    return samples


def phase(state: Path, plugin: str | None, n: int) -> list[float]:
    args = (f"--authorization-plugin={plugin}",) if plugin else ()
    engine = PrivateEngine(EngineConfig(state_dir=state, extra_args=args)).start()
    try:
        client = docker.APIClient(base_url=engine.base_url, version="1.41")
        ensure_all(engine.client(), cache_dir_from_env())
        time_creates(client, 5)  # warm: the first create scans the image
        return time_creates(client, n)
    finally:
        engine.stop()


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="creates per phase")
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    ensure_packages()
    work = Path(tempfile.mkdtemp(prefix="gb-", dir="/tmp"))
    name = f"garrison-bench-{os.getpid()}"
    state = work / "e"
    store = SQLiteStore(work / "garrison.db")
    save_policy(store, "vulnerability", [{"name": "block critical", "effect": "block"}])
    save_policy(store, "compliance", [{"name": "no privileged", "checks": {"5.4": "block"}}])
    lazy = docker.DockerClient(base_url=f"unix://{state}/docker.sock", version="1.41")
    gate = Gate(
        Scanner.for_docker(lazy, None),
        StoredPolicies(store),
        on_audit=lambda audit: store.add_audits([audit]),
        containers=docker_containers(lazy),
    )
    server = GateServer(gate, ServerConfig(socket_path=work / "authz.sock", name=name)).start()
    with_plugin: list[float] = []
    without: list[float] = []
    try:
        for _ in range(opts.rounds):
            with_plugin += phase(state, name, opts.n)
            without += phase(state, None, opts.n)
    finally:
        server.stop()
        store.close()
        shutil.rmtree(work, ignore_errors=True)
    report(with_plugin, without)


def report(with_plugin: list[float], without: list[float]) -> None:
    for label, samples in (("without plugin", without), ("with plugin", with_plugin)):
        p50, p99, mean = pct(samples, 0.5), pct(samples, 0.99), statistics.fmean(samples)
        print(f"{label:>15}: n={len(samples)} p50={p50:.2f} ms p99={p99:.2f} ms mean={mean:.2f} ms")
    added50 = pct(with_plugin, 0.5) - pct(without, 0.5)
    added99 = pct(with_plugin, 0.99) - pct(without, 0.99)
    verdict = "met" if added50 <= GOAL_MS else "MISSED"
    print(f"added by the gate: p50 {added50:.2f} ms, p99 {added99:.2f} ms "
          f"(goal p50 <= {GOAL_MS:.0f} ms: {verdict})")  # fmt: skip


if __name__ == "__main__":
    main()
