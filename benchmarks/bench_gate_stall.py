"""The gate's watchdog: time from SIGSTOP of the authorization plugin to ``docker ps`` answering.

    sudo .venv/bin/python benchmarks/bench_gate_stall.py [--trials 20] [--give-up 30]
        [--json-out FILE]

``garrison authz serve`` (a watchdog holding the plugin's socket, and the plugin, its child)
gates a private engine started with ``--authorization-plugin``. Per trial, once the plugin
answers: ``docker ps`` timed with the plugin running (plain), then SIGSTOP to the plugin and at
once ``docker ps``, timed from the SIGSTOP to its return. dockerd's call waits until the
watchdog finds the plugin's event loop silent for ``--stall-timeout`` (2 s), kills it and starts
another, which takes the call from the socket's backlog. Without the watchdog the call waits
forever (before the fix: over 150 s, stopped by hand). A ``docker ps`` not back after
``--give-up`` seconds counts as not answered. Nothing is asserted: a table, and JSON with
--json-out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_enforce import quantiles
from garrison.devengine import EngineConfig, PrivateEngine, ensure_packages
from garrison.scan.gate import probe_plugin

PLUGIN_DIR = Path("/run/docker/plugins")


@dataclass
class Trial:
    plain: float  # docker ps, the plugin running
    stalled: float | None  # SIGSTOP → docker ps returned; None: not within the give-up
    code: int | None


class Gated:
    """The plugin process and the engine it gates."""

    def __init__(self, work: Path) -> None:
        self.name = f"garrison-bench-{os.getpid()}"
        self.work = work
        self.plugin = subprocess.Popen(
            [sys.executable, "-m", "garrison", "authz", "serve", "--name", self.name,
             "--socket", str(work / "s" / "authz.sock"), "--link-dir", str(PLUGIN_DIR),
             "--docker-host", f"unix://{work}/e/docker.sock", "--data-dir", str(work / "data")],
            stdout=(work / "plugin.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait_answering()
        extra = (f"--authorization-plugin={self.name}",)
        self.engine = PrivateEngine(EngineConfig(state_dir=work / "e", extra_args=extra))
        self.engine.start()

    def wait_answering(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not probe_plugin(PLUGIN_DIR / f"{self.name}.sock", timeout=1).answering:
            if self.plugin.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the plugin does not answer; see {self.work}/plugin.log")
            time.sleep(0.05)

    def child(self) -> int:
        pid = self.plugin.pid
        return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])

    def docker_ps(self, give_up: float) -> tuple[float | None, int | None]:
        env = {**os.environ, "DOCKER_HOST": self.engine.base_url}
        started = time.monotonic()
        try:
            run = subprocess.run(
                ["docker", "ps", "-q"], env=env, capture_output=True, timeout=give_up, check=False
            )
        except subprocess.TimeoutExpired:
            return None, None
        return time.monotonic() - started, run.returncode

    def close(self) -> None:
        self.engine.stop()  # before the plugin: dockerd calls it while stopping
        self.plugin.send_signal(signal.SIGTERM)
        self.plugin.wait(30)


def trial(gated: Gated, give_up: float) -> Trial:
    gated.wait_answering()
    plain, _ = gated.docker_ps(give_up)
    child = gated.child()
    os.kill(child, signal.SIGSTOP)
    stalled, code = gated.docker_ps(give_up)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child, signal.SIGCONT)  # in case the watchdog did not end it
    return Trial(plain or 0.0, stalled, code)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--give-up", type=float, default=30.0)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    ensure_packages()
    work = Path(tempfile.mkdtemp(prefix="gbs-", dir="/tmp"))  # short: unix socket paths
    gated = Gated(work)
    try:
        trials = [trial(gated, args.give_up) for _ in range(args.trials)]
    finally:
        gated.close()
        shutil.rmtree(work, ignore_errors=True)
    report(trials, args.json_out)


def report(trials: list[Trial], json_out: Path | None) -> None:
    for i, t in enumerate(trials, 1):
        took = f"{t.stalled:.2f} s" if t.stalled is not None else "not answered"
        print(f"trial {i:2d}: plain {t.plain * 1000:.0f} ms, stalled plugin → docker ps {took}")
    answered = sorted(t.stalled for t in trials if t.stalled is not None and t.code == 0)
    figures = {k: round(v, 3) for k, v in quantiles(answered).items()}
    print(f"answered {len(answered)}/{len(trials)}; SIGSTOP → docker ps: {figures}")
    if json_out:
        doc = {"trials": [asdict(t) for t in trials], "stalled": figures}
        json_out.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
