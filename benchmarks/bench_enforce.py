"""Enforcement costs: violation → container stopped; open and exec storms under prevent rules.

    sudo .venv/bin/python benchmarks/bench_enforce.py [--trials 50] [--rounds 5]
        [--opens 3000] [--execs 2000] [--only block,storms] [--engine-dir DIR] [--json-out FILE]

The real defender (``python -m garrison run``, a child process) on a private engine; rules put
in force with ``garrison rules apply -f FILE``, as a user does.

1. block: a rule ``processes.denied: {effect: block, paths: [nc]}``. Per trial a fresh
   garrison-test/debian:12 container (``sleep infinity``); once the defender's log says it
   watches it, ``docker exec bash -c 'echo $EPOCHREALTIME >&2; exec /usr/bin/nc -h'``: t0 is
   bash's clock just before the execve (not the ``docker exec`` around it), t1 the ``timeNano``
   of the container's ``die`` event. Both are the host's wall clock (containers share it). The
   steps between (the blocking audit's time, the ``update`` and ``kill`` events, FinishedAt)
   show where the time goes.
2. open storm, timed inside the container, two loops:
   - ``cat``: bash, N times ``cat /etc/debian_version >/dev/null; echo $i >/tmp/gbe-$((i%16))``
     (a fork + exec, a read of a file under the protected /etc, a small write under /tmp);
   - ``python``: python3, 5N times open/read/close of /etc/debian_version and open-write-close
     of /tmp/gbe-py-$((i%16)): no exec, so it isolates the cost of the opens (µs per open).
3. exec storm: bash, N times ``/usr/bin/true``.

Modes: ``none`` (no defender); ``rules`` (the defender, rule ``processes.denied: {effect:
prevent, paths: [nc]}``, no file rule); ``file`` (the same plus ``filesystem.denied: {effect:
prevent, paths: [/etc]}``, which the defender enforces by making /etc read-only in the
container; a probe write to /etc checks it, and that it was audited); ``guard`` (the same rules,
the defender run with ``--write-prevention fanotify``: the container's opens are guarded with
open-permission marks, as every file prevent rule was before read-only mounts). Storms 2 and 3
run in one container whose image model learned all three storms and was then made active
(``learn-stop``), as in production after learning. Each round runs, per mode (order rotated),
the three storms with no defender, then a fresh defender in that mode, a small warm-up (its
kernel ignore marks are new) and the three storms again: a ratio compares neighbours, as the
load of a shared machine drifts within seconds. Ratios are medians of those paired ratios.
Nothing is asserted: a table, and JSON with --json-out.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import docker
import docker.errors

from garrison.console import Console
from garrison.devengine import DEBIAN, PrivateEngine, ensure_all
from garrison.devengine.images import cache_dir_from_env
from garrison.errors import GarrisonError
from garrison.policy import load_rules_file
from support import cpu_seconds, parts_option, run_benchmark, started_by

SCOPE = f'    scope: [{{images: ["{DEBIAN.name}"]}}]\n'
BLOCK_RULES = (
    "rules:\n  - name: bench - block nc\n"
    + SCOPE
    + ("    processes:\n      denied: {effect: block, paths: [nc]}\n")
)
PROCESS_RULES = (
    "rules:\n  - name: bench - prevent nc\n"
    + SCOPE
    + ("    processes:\n      denied: {effect: prevent, paths: [nc]}\n")
)
FILE_RULES = PROCESS_RULES + "    filesystem:\n      denied: {effect: prevent, paths: [/etc]}\n"
RULES = {"block": BLOCK_RULES, "rules": PROCESS_RULES, "file": FILE_RULES, "guard": FILE_RULES}
MODES = ("rules", "file", "guard")
DEFENDER_ARGS = {"guard": ("--write-prevention", "fanotify")}
# The files sensor's counter that says the probe's write was refused, and how, per mode.
REFUSED_BY = {"file": "write_refused", "guard": "write_denied"}
STORMS = ("cat", "python", "exec")
GOALS = {("cat", "file"): 1.20, ("python", "file"): 1.20, ("exec", "rules"): 1.03}
BLOCK_GOAL_P99 = 0.100
PY_STORM = """
import os, sys, time
n = int(sys.argv[1]); w = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
s = time.perf_counter()
for i in range(n):
    fd = os.open("/etc/debian_version", os.O_RDONLY); os.read(fd, 64); os.close(fd)
    fd = os.open(f"/tmp/gbe-py-{i % 16}", w, 0o644); os.write(fd, b"x"); os.close(fd)
print(time.perf_counter() - s)
"""
PROBE = "echo x > /etc/gbe-probe && echo written"
LEARNED = {"/usr/bin/bash", "/usr/bin/cat", "/usr/bin/true"}
READY_TIMEOUT = 90.0


class BenchError(GarrisonError):
    """The benchmark could not set up or read what it measures."""


@dataclass
class Lab:
    client: docker.DockerClient
    docker_host: str
    work: Path
    args: argparse.Namespace
    notes: list[str] = field(default_factory=list)


# -- the defender, a child process -------------------------------------------------------------


class Defender:
    """``garrison run`` on ``data_dir``; its status read from the store, its log tailed."""

    def __init__(
        self,
        lab: Lab,
        data_dir: Path,
        period: str,
        args: tuple[str, ...] = (),
        status_interval: str | None = "0.3",
    ) -> None:
        """``status_interval``: how often the defender reports its status (the readiness
        waits read it); None leaves the default users run with (2 s), for figures of the
        defender's own cost."""
        self.lab, self.data_dir, self.period, self.args = lab, data_dir, period, args
        self.status_interval = status_interval
        self.log = data_dir / "defender.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Defender:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "garrison", "run", "--docker-host", self.lab.docker_host]
        argv += ["--data-dir", str(self.data_dir), "--learning-period", self.period, *self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
        if self.status_interval is not None:
            env["GARRISON_STATUS_INTERVAL"] = self.status_interval
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env
            )
        self.wait(lambda s: bool(s.get("sensors", {}).get("exec", {}).get("running")), "start")
        return self

    def __exit__(self, *_: object) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self) -> dict[str, Any]:
        with Console.open(self.data_dir) as console:
            return console.status().get("defender") or {}

    def wait(
        self, ready: Callable[[dict[str, Any]], bool], what: str, timeout: float = READY_TIMEOUT
    ) -> dict[str, Any]:
        """Until the defender's own status (not an older one's) satisfies ``ready``."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"the defender exited: {self.log.read_text()[-500:]}")
            status = self.status()
            if started_by(status, self.proc.pid) and ready(status):
                return status
            time.sleep(0.05)
        raise BenchError(f"the defender did not {what} within {timeout:.0f} s (see {self.log})")

    def apply(self, mode: str) -> None:
        """``garrison rules apply`` and wait until the running defender has them in force."""
        path = self.lab.work / f"{mode}.yaml"
        path.write_text(RULES[mode])
        garrison("rules", "apply", "-f", str(path), "--data-dir", str(self.data_dir))
        digest = load_rules_file(path).digest()[:12]
        if self.proc is not None:
            self.wait(lambda s: s.get("rules") == digest, f"take rules {digest}")

    def wait_watching(self, name: str, timeout: float = 30.0) -> None:
        """Until the log says the defender watches container ``name`` (after its marks)."""
        deadline = time.monotonic() + timeout
        needle = f"watching {name} ("
        while needle not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise BenchError(f"the defender did not watch {name} in {timeout} s")
            time.sleep(0.005)


def garrison(*args: str) -> str:
    argv = [sys.executable, "-m", "garrison", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode != 0:
        raise BenchError(f"garrison {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return done.stdout


# -- 1. violation → container stopped ----------------------------------------------------------


class ContainerEvents:
    """The engine's first ``update``, ``kill`` and ``die`` event of each container: the
    daemon's ``timeNano``, in seconds."""

    ACTIONS = ("update", "kill", "die")

    def __init__(self, client: docker.DockerClient) -> None:
        self.times: dict[tuple[str, str], float] = {}
        self._cond = threading.Condition()
        filters = {"type": "container", "event": list(self.ACTIONS)}
        self._stream = client.events(decode=True, filters=filters)
        self._thread = threading.Thread(target=self._run, name="container-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the stream is closed under us at the end
            for event in self._stream:
                with self._cond:
                    key = (event["id"], event["Action"].split(":")[0])
                    self.times.setdefault(key, int(event["timeNano"]) / 1e9)
                    self._cond.notify_all()

    def wait(self, container_id: str, action: str, timeout: float) -> float | None:
        with self._cond:
            self._cond.wait_for(lambda: (container_id, action) in self.times, timeout)
            return self.times.get((container_id, action))

    def get(self, container_id: str, action: str) -> float | None:
        with self._cond:
            return self.times.get((container_id, action))

    def close(self) -> None:
        self._stream.close()


@dataclass
class Trial:
    """One violation; the times are the host's wall clock, in seconds."""

    container_id: str
    t0: float  # just before the execve of nc
    die: float | None  # the die event; None: not stopped
    exited: float | None  # State.FinishedAt: when the container's process ended
    update: float | None  # the update event (restart policy changed)
    kill: float | None  # the kill event
    exit_code: int | None
    output: str
    audit: float | None = None  # the blocking audit's time (made on the defender's loop)
    stored: float | None = None  # when the blocking audit was first seen in the store

    def since_t0(self, t: float | None) -> float | None:
        return None if t is None else (t - self.t0) * 1000


def rfc3339_seconds(text: str) -> float:
    """Docker's FinishedAt (nanoseconds, UTC) as epoch seconds."""
    whole, _, frac = text.rstrip("Z").partition(".")
    base = time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return base + float(f"0.{frac or '0'}")


def block_trial(lab: Lab, defender: Defender, events: ContainerEvents, i: int) -> Trial:
    name = f"gbe-block-{os.getpid()}-{i}"
    container = lab.client.containers.run(
        DEBIAN.name, ["sleep", "infinity"], detach=True, name=name
    )
    try:
        defender.wait_watching(name)
        # t0 on stderr, like bash's complaint: one stream keeps their order.
        script = 'echo "$EPOCHREALTIME" >&2; exec /usr/bin/nc -h'
        result = container.exec_run(["bash", "-c", script])
        output = cast(bytes, result.output).decode(errors="replace")
        if not output[:1].isdigit():
            raise BenchError(f"no t0 from the exec in {name}: {output[:200]!r}")
        t0 = float(output.split()[0].replace(",", "."))
        cid = str(container.id)
        died = events.wait(cid, "die", 5.0)
        events.wait(cid, "update", 1.0)  # the policy is changed after the kill: maybe later
        container.reload()
        state = container.attrs["State"]
        exited = None if state["Running"] else rfc3339_seconds(state["FinishedAt"])
        return Trial(
            cid, t0, died, exited, events.get(cid, "update"), events.get(cid, "kill"),
            result.exit_code, output.strip().splitlines()[-1][:120],
        )  # fmt: skip
    finally:
        container.remove(force=True)


class StoredAudits:
    """When each container's blocking audit is first seen in the store: its SQLite file read
    every 2 ms, read-only, from a thread of this process (as a console reader would)."""

    def __init__(self, db: Path) -> None:
        self.times: dict[str, float] = {}
        self._db, self._last = db, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stored-audits", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.closing(sqlite3.connect(f"file:{self._db}?mode=ro", uri=True)) as db:
            while not self._stop.wait(0.002):
                query = "SELECT id, container_id FROM audits WHERE id > ? AND effect = 'block'"
                for row_id, container_id in db.execute(query, (self._last,)).fetchall():
                    self.times.setdefault(container_id, time.time())
                    self._last = max(self._last, row_id)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def measure_block(lab: Lab) -> dict[str, Any]:
    events = ContainerEvents(lab.client)
    trials: list[Trial] = []
    data = lab.work / "block"
    try:
        with Defender(lab, data, "1h") as defender:
            defender.apply("block")
            stored = StoredAudits(data / "garrison.db")
            try:
                for i in range(lab.args.trials):
                    trials.append(block_trial(lab, defender, events, i))
            finally:
                stored.close()
            time.sleep(1.0)  # one status report later
            blocks = defender.status().get("enforcement", {})
    finally:
        events.close()
    for trial in trials:
        trial.stored = stored.times.get(trial.container_id)
    with Console.open(data) as console:
        audits = {a.containerId: a.time for a in console.list_audits() if a.effect == "block"}
    for trial in trials:
        trial.audit = audits.get(trial.container_id)
    return summarize_block(trials, blocks)


# The steps of a block, in order, as milliseconds after t0.
STEPS = {
    "audit": "audit made (exec judged, on the loop)",
    "stored": "audit stored (seen in the store)",
    "update": "restart policy changed (update event)",
    "kill": "kill requested (kill event)",
    "exited": "process ended (State.FinishedAt)",
    "die": "die event (after Docker's clean-up)",
}


def summarize_block(trials: list[Trial], enforcement: dict[str, Any]) -> dict[str, Any]:
    steps = {
        step: quantiles(
            sorted(v for t in trials if (v := t.since_t0(getattr(t, step))) is not None)
        )
        for step in STEPS
    }
    return {
        "trials": len(trials),
        "stopped": sum(t.die is not None for t in trials),
        "ms": steps["die"],
        "stepsMs": steps,
        "goalP99Ms": BLOCK_GOAL_P99 * 1000,
        "execExitCodes": sorted({str(t.exit_code) for t in trials}),
        "execOutput": trials[0].output if trials else "",
        "enforcement": enforcement,
        "samplesMs": [t.since_t0(t.die) for t in trials],
    }


def quantiles(values: list[float]) -> dict[str, float]:
    """p50/p95/p99 by nearest rank (with 50 trials p99 is the 50th: the worst), and max."""
    if not values:
        return {}

    def rank(p: int) -> float:
        return values[min(len(values), max(1, math.ceil(len(values) * p / 100))) - 1]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": values[-1]}


# -- 2 and 3. storms ---------------------------------------------------------------------------


def run_in(container: Any, argv: list[str]) -> str:
    result = container.exec_run(argv)
    if result.exit_code != 0:
        raise BenchError(f"{argv[:2]} failed ({result.exit_code}): {result.output[-300:]!r}")
    return str(result.output.decode().strip())


def timed_bash(container: Any, body: str) -> float:
    out = run_in(container, ["bash", "-c", f"s=$EPOCHREALTIME; {body}; echo $s $EPOCHREALTIME"])
    start, end = (float(x) for x in out.split()[-2:])
    return end - start


def storm(container: Any, kind: str, n: int) -> float:
    if kind == "cat":
        body = "cat /etc/debian_version >/dev/null; echo $i >/tmp/gbe-$((i % 16))"
        return timed_bash(container, f"for i in $(seq {n}); do {body}; done")
    if kind == "python":
        return float(run_in(container, ["python3", "-c", PY_STORM, str(n)]).split()[-1])
    return timed_bash(container, f"for i in $(seq {n}); do /usr/bin/true; done")


def storm_sizes(lab: Lab) -> dict[str, int]:
    return {"cat": lab.args.opens, "python": lab.args.opens * 5, "exec": lab.args.execs}


def all_storms(lab: Lab, container: Any, scale: float = 1.0) -> dict[str, float]:
    return {k: storm(container, k, max(20, int(n * scale))) for k, n in storm_sizes(lab).items()}


def probe_written(container: Any) -> bool:
    return "written" in container.exec_run(["bash", "-c", PROBE]).output.decode(errors="replace")


def learn(lab: Lab, container: Any, data: Path) -> None:
    """The model learns the storms and the probe, then is made active (``learn-stop``)."""
    with Defender(lab, data, "1h") as defender:
        defender.apply("rules")
        all_storms(lab, container)
        probe_written(container)
        time.sleep(2.0)  # the proc connector's last events reach the model, which is saved
        with Console.open(data) as console:
            console.learn_stop(DEBIAN.name)
        defender.wait(lambda s: s.get("models", {}).get("active", 0) >= 1, "activate the model")
    with Console.open(data) as console:
        model = console.show_model(DEBIAN.name)
    known = {str(p.get("path")) for p in model.get("processes", [])}
    missing = sorted(LEARNED - known)
    if missing:
        raise BenchError(f"the model did not learn {missing} (it knows {sorted(known)})")
    lab.notes.append(f"the active model knows {len(known)} processes: {', '.join(sorted(known))}")


def paired_mode(lab: Lab, container: Any, data: Path, mode: str) -> dict[str, Any]:
    """The storms with nothing running (the baseline), then under a defender in ``mode``: the
    load of a shared machine drifts within seconds, so each ratio compares neighbours."""
    baseline = measured_storms(lab, container, None)["seconds"]
    with Defender(lab, data, "1h", DEFENDER_ARGS.get(mode, ())) as defender:
        defender.apply(mode)
        defender.wait(lambda s: s.get("containers", 0) >= 1, "watch the container")
        if mode in REFUSED_BY:  # the guard comes first, the read-only mount a moment later
            defender.wait(lambda s: mode != "file" or _files(s).get("mounts"), "mount /etc")
        written = probe_written(container)
        if written != (mode == "rules"):
            raise BenchError(f"mode {mode}: the probe write to /etc was {written=}")
        if mode in REFUSED_BY:
            defender.wait(lambda s: _files(s).get(REFUSED_BY[mode]), f"count {REFUSED_BY[mode]}")
        all_storms(lab, container, 0.05)  # the kernel's ignore marks are new: set them
        time.sleep(0.7)  # a status report after the warm-up
        before = defender.status()
        got = measured_storms(lab, container, defender.pid)
        got |= counters(before, defender)
    return {"baseline": baseline, **got}


def _files(status: dict[str, Any]) -> dict[str, Any]:
    return dict(status.get("sensors", {}).get("files", {}).get("extra", {}))


def measured_storms(lab: Lab, container: Any, pid: int | None) -> dict[str, Any]:
    """Each storm's seconds and, with a defender, the defender's CPU seconds during it."""
    seconds, cpu = {}, {}
    for kind, n in storm_sizes(lab).items():
        before = cpu_seconds(pid) if pid else 0.0
        seconds[kind] = storm(container, kind, n)
        cpu[kind] = cpu_seconds(pid) - before if pid else 0.0
    return {"seconds": seconds, "cpu": cpu}


def counters(before: dict[str, Any], defender: Defender) -> dict[str, Any]:
    """What the defender did during one mode's storms: verdicts, audits, file guard work."""
    time.sleep(0.7)  # one status report later
    after = defender.status()

    def delta(get: Callable[[dict[str, Any]], Any]) -> int:
        return int(get(after) or 0) - int(get(before) or 0)

    def files(status: dict[str, Any]) -> dict[str, Any]:
        return dict(status.get("sensors", {}).get("files", {}))

    return {
        "verdicts": delta(lambda s: s.get("events", {}).get("verdicts")),
        "audits": delta(lambda s: s.get("audits")),
        "fileEvents": delta(lambda s: files(s).get("events")),
        "openIgnored": delta(lambda s: files(s).get("extra", {}).get("open_ignored")),
    }


def measure_storms(lab: Lab) -> dict[str, Any]:
    container = lab.client.containers.run(DEBIAN.name, ["sleep", "infinity"], detach=True)
    data = lab.work / "active"
    rows: list[dict[str, dict[str, Any]]] = []
    try:
        all_storms(lab, container, 0.1)  # warm the page cache
        learn(lab, container, data)
        for rnd in range(lab.args.rounds):
            modes = MODES[rnd % len(MODES) :] + MODES[: rnd % len(MODES)]
            rows.append({mode: paired_mode(lab, container, data, mode) for mode in modes})
            print(f"round {rnd + 1}: " + "  ".join(round_line(m, r) for m, r in rows[-1].items()))
    finally:
        container.remove(force=True)
    return summarize_storms(rows, storm_sizes(lab))


def round_line(mode: str, row: dict[str, Any]) -> str:
    pairs = (f"{row['baseline'][k]:.2f}/{row['seconds'][k]:.2f}" for k in STORMS)
    return f"{mode} " + " ".join(pairs)


PER_STORM = ("baseline", "seconds", "cpu")  # the other keys count all three storms of a mode


def summarize_storms(rows: list[dict[str, Any]], sizes: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in STORMS:
        bare = [r[m]["baseline"][kind] for r in rows for m in r]
        out[kind] = {"n": sizes[kind], "none": {"medianSeconds": statistics.median(bare)}}
        out[kind]["none"] |= {"seconds": bare, "ratio": 1.0, "ratios": [], "goal": None}
        for mode in MODES:
            got = [r[mode] for r in rows]
            ratios = [g["seconds"][kind] / g["baseline"][kind] for g in got]
            out[kind][mode] = {
                "medianSeconds": statistics.median(g["seconds"][kind] for g in got),
                "seconds": [g["seconds"][kind] for g in got],
                "baselineSeconds": [g["baseline"][kind] for g in got],
                "ratio": statistics.median(ratios),
                "ratios": ratios,
                "goal": GOALS.get((kind, mode)),
                "defenderCpu": [g["cpu"][kind] for g in got],
                **{k: [g[k] for g in got] for k in got[0] if k not in PER_STORM},
            }
    return out


# -- report and main ---------------------------------------------------------------------------


def report(doc: dict[str, Any]) -> None:
    if doc["block"]:
        report_block(doc["block"])
    if doc["storms"]:
        report_storms(doc)
    for note in doc["notes"]:
        print(f"note: {note}")


def report_storms(doc: dict[str, Any]) -> None:
    print(f"\n2./3. storms in {doc['image']}, {doc['rounds']} interleaved rounds, medians")
    print(f"{'storm':31} {'mode':5} {'seconds':>7} {'ratio':>6}  {'goal':12} {'cpu s':>5}  rounds")
    for kind, per in doc["storms"].items():
        for mode in ("none", *MODES):
            print(storm_line(kind, per, mode))
    print("ratio: against no defender, median of per-round ratios; cpu s: the defender's CPU")
    print("seconds during the storm; rules: prevent nc; file: prevent nc + prevent writes to /etc")
    print("(a read-only mount); guard: the same by open-permission events (--write-prevention")
    print("fanotify)")
    for mode in MODES:
        m = doc["storms"]["exec"][mode]
        counts = {k: statistics.median(m[k]) for k in ("verdicts", "audits", "openIgnored")}
        print(
            f"{mode}: per round, all three storms: "
            + ", ".join(f"{k} {v:.0f}" for k, v in counts.items())
        )


def report_block(block: dict[str, Any]) -> None:
    print(f"\n1. violation -> container stopped: {block['stopped']}/{block['trials']} stopped")
    print(f"   {'ms after t0 (the execve of nc)':40} {'p50':>6} {'p95':>6} {'p99':>6} {'max':>6}")
    for step, what in STEPS.items():
        q = block["stepsMs"][step]
        cells = " ".join(f"{q[k]:6.1f}" for k in ("p50", "p95", "p99", "max")) if q else "-"
        print(f"   {what:40} {cells}")
    q = block["ms"]
    verdict = "ok" if q and q["p99"] <= block["goalP99Ms"] else "OVER"
    print(f"   goal: die event p99 <= {block['goalP99Ms']:.0f} ms: {verdict}")
    print(f"   the exec of nc: exit {block['execExitCodes']}, {block['execOutput']!r}")


STORM_LABELS = {
    "cat": "{n} x (cat /etc/x; write /tmp)",
    "python": "{n} x (read /etc/x; write /tmp)",
    "exec": "{n} x /usr/bin/true",
}


def storm_line(kind: str, per: dict[str, Any], mode: str) -> str:
    m = per[mode]
    goal = "-"
    if m["goal"]:
        goal = f"<= {m['goal']:.2f} " + ("ok" if m["ratio"] <= m["goal"] else "OVER")
    cpu = f"{statistics.median(m['defenderCpu']):.2f}" if mode != "none" else "-"
    rounds = " ".join(f"{r:.2f}" for r in m["ratios"])
    label = STORM_LABELS[kind].format(n=per["n"])
    line = f"{label:31} {mode:5} {m['medianSeconds']:7.3f} {m['ratio']:6.3f}  {goal:12} {cpu:>5}"
    line += f"  {rounds}"
    if kind == "python" and mode != "none":
        added = [s - b for s, b in zip(m["seconds"], m["baselineSeconds"], strict=True)]
        extra = statistics.median(added) / (2 * per["n"]) * 1e6
        line += f"  ({extra:+.0f} us/open)"
    return line


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    client = engine.client()
    try:
        ensure_all(client, cache_dir_from_env())
        lab = Lab(client, engine.base_url, work, args)
        doc: dict[str, Any] = {"image": DEBIAN.name, "rounds": args.rounds}
        doc["block"] = measure_block(lab) if "block" in args.only else None
        doc["storms"] = measure_storms(lab) if "storms" in args.only else None
        doc["notes"] = lab.notes
        return doc
    finally:
        client.close()


PARTS = ("block", "storms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--opens", type=int, default=3000, help="cat loop size (python: x5)")
    parser.add_argument("--execs", type=int, default=2000)
    parser.add_argument(
        "--only", type=parts_option(PARTS), default=frozenset(PARTS), help="block, storms or both"
    )
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), "gbe", run_all, report)


if __name__ == "__main__":
    main()
