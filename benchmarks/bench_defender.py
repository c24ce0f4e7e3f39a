"""The whole defender against an exec storm, beside the peers users know; RSS when idle.

    sudo .venv/bin/python benchmarks/bench_defender.py [--execs 2000] [--rounds 5]
        [--only learning,active,auditd,bpftrace,burst,rss] [--engine-dir DIR] [--json-out FILE]

Times ``for i in $(seq N); do /usr/bin/true garrison-bench; done`` inside a garrison-test/debian:12
container with bash's $EPOCHREALTIME (the loop only, not the ``docker exec`` around it). Each
round runs every mode once, in an order rotated from round to round, each right after a storm
with nothing running (its paired baseline, "none"); figures are medians, a mode's ratio is the
median of its ratios to its paired baselines.

- none:      no defender, no tracer.
- learning:  ``python -m garrison run --learning-period 1h`` (a child process, fresh store each
             round), started before the storm and stopped after it. Its model's count for
             /usr/bin/true, divided by N, is "execs seen / execs made".
- active:    the same defender on a store whose model learned the storm (a short learning period,
             once before the rounds) and is now active: the judge answers ALLOW_ALWAYS and the
             kernel's ignore mark skips /usr/bin/true; the proc connector still records it.
- auditd:    Linux audit with ``-a always,exit -F arch=b64 -S execve``, added before the storm and
             removed after it (auditd started for the run, with its log in a scratch folder, when
             none runs).
- bpftrace:  ``tracepoint:sched:sched_process_exec`` counting the container's execs of ``true``.

Execs seen / execs made at >= 1000 exec/s: the storm in 4 concurrent loops under a learning
defender (a single loop may run slower than that here), the model's count against N.
Then 20 idle busybox containers, a fresh defender, and its VmRSS once it watches all of them.
``--only`` runs some of these parts (all by default), for instance ``--only active`` while
working on the active mode. Nothing here asserts a time: it prints a table (and JSON with
--json-out) and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from garrison.devengine import (
    BUSYBOX,
    DEBIAN,
    PrivateEngine,
    ensure_all,
    ensure_packages,
)
from garrison.devengine.images import cache_dir_from_env
from garrison.errors import GarrisonError
from support import cpu_seconds, defender_pid, parts_option, run_benchmark, started_by

MARK = "garrison-bench"
TRUE = "/usr/bin/true"
AUDIT_RULE = ("always,exit", "-F", "arch=b64", "-S", "execve", "-k", MARK)
GOALS = {"learning": 1.30, "active": 1.03}
MEASURED_HERE = {"auditd": 1.20, "bpftrace": 1.00}  # the figures for the peers
LABELS = {
    "none": "no defender",
    "learning": "Garrison learning",
    "active": "Garrison active (learned)",
    "auditd": "auditd, execve rule",
    "bpftrace": "bpftrace sched_process_exec",
}
TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PARTS = ("learning", "active", "auditd", "bpftrace", "burst", "rss")
IDLE_CONTAINERS = 20
BURST_LOOPS = 4
SETTLE_SECONDS = 1.5
READY_TIMEOUT = 90.0


class BenchError(GarrisonError):
    """The benchmark could not set up or read what it measures."""


@dataclass
class Sample:
    seconds: float
    seen: int | None = None  # execs of /usr/bin/true the tool reported, where it counts them
    verdicts: int | None = None  # exec permission events the defender judged
    handled: int | None = None  # events the defender's loop handled (proc connector included)
    cpu: float | None = None  # the defender's CPU seconds during the storm


@dataclass
class Lab:
    client: docker.DockerClient
    docker_host: str
    work: Path
    n: int
    parts: frozenset[str] = frozenset(PARTS)
    container: Any = None
    active_period: str = "5s"
    notes: list[str] = field(default_factory=list)


# -- the storm ---------------------------------------------------------------------------------


def storm(container: Any, n: int, loops: int = 1) -> float:
    """Seconds for ``n`` execs, run by ``loops`` concurrent loops (n a multiple of loops)."""
    loop = f"for i in $(seq {n // loops}); do {TRUE} {MARK}; done"
    body = loop if loops == 1 else f"for j in $(seq {loops}); do ({loop}) & done; wait"
    # Every storm starts after the same idle gap: a cgroup that has just run is scheduled
    # behind its neighbours for a while (EEVDF keeps a sleeper's lag), which would slow
    # whichever storm of a pair comes second.
    time.sleep(SETTLE_SECONDS)
    result = container.exec_run(["bash", "-c", f"s=$EPOCHREALTIME; {body}; echo $s $EPOCHREALTIME"])
    if result.exit_code != 0:
        raise BenchError(f"the storm failed ({result.exit_code}): {result.output[-200:]!r}")
    start, end = (float(x) for x in result.output.split())
    return end - start


# -- processes and the garrison CLI ------------------------------------------------------------


def stop_process(proc: subprocess.Popen[bytes], sig: signal.Signals, timeout: float = 30) -> None:
    """Stop a child we started, by its pid: ``sig``, then SIGKILL if it does not go."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def garrison_json(*args: str, ok: tuple[int, ...] = (0,)) -> Any:
    argv = [sys.executable, "-m", "garrison", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if done.returncode not in ok:
        raise BenchError(f"garrison {' '.join(args)}: {done.stderr.strip()[-300:]}")
    return json.loads(done.stdout)


def defender_status(data_dir: Path) -> dict[str, Any]:
    # `garrison status` exits 1 once the defender stopped, 2 while it is silent: still a report.
    doc = garrison_json("status", "--json", "--data-dir", str(data_dir), ok=(0, 1, 2))
    return doc.get("defender") or {}


def true_count(data_dir: Path) -> int:
    # ``models show`` prints JSON only (it takes no --json).
    model = garrison_json("models", "show", DEBIAN.name, "--data-dir", str(data_dir))
    return sum(int(p["count"]) for p in model.get("processes", []) if p.get("path") == TRUE)


def model_state(data_dir: Path) -> str:
    models = garrison_json("models", "list", "--json", "--data-dir", str(data_dir))
    return next((str(m["state"]) for m in models if m.get("imageName") == DEBIAN.name), "none")


@contextlib.contextmanager
def defender(
    lab: Lab, data_dir: Path, period: str, containers: int
) -> Iterator[subprocess.Popen[bytes]]:
    """``garrison run`` as a child, yielded once its status says it watches ``containers``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "garrison", "run", "--docker-host", lab.docker_host]
    argv += ["--data-dir", str(data_dir), "--learning-period", period]
    # The defaults users run with (status every 2 s): readiness waits for a status a little
    # longer, and the figures after the storm come from the status written at shutdown.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}
    with (data_dir / "defender.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
    try:
        wait_watching(proc, data_dir, containers)
        yield proc
        time.sleep(1.0)  # let the asynchronous proc connector's events reach the model
    finally:
        stop_process(proc, signal.SIGTERM)


def wait_watching(proc: subprocess.Popen[bytes], data_dir: Path, containers: int) -> None:
    """First its log (the store is not touched before the defender made it: two processes
    creating the schema at once collide), then its status in the store, as users check it."""
    log = data_dir / "defender.log"
    deadline = time.monotonic() + READY_TIMEOUT
    while log.read_text(errors="replace").count(" watching ") < containers:
        check_alive(proc, log, deadline)
        time.sleep(0.1)
    while True:
        status = defender_status(data_dir)
        running = (status.get("sensors") or {}).get("exec", {}).get("running")
        if started_by(status, proc.pid) and status.get("containers", 0) >= containers and running:
            return
        check_alive(proc, log, deadline)
        time.sleep(0.2)


def check_alive(proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    if proc.poll() is not None:
        tail = log.read_text(errors="replace")[-500:]
        raise BenchError(f"the defender exited ({proc.returncode}):\n{tail}")
    if time.monotonic() > deadline:
        raise BenchError(f"the defender did not watch its containers in {READY_TIMEOUT} s")


# -- the modes ---------------------------------------------------------------------------------


def run_learning(lab: Lab, rnd: int) -> Sample:
    data = lab.work / f"learning-{rnd}"
    sample = defended_storm(lab, data, "1h")
    sample.seen = soft(lab, true_count, data)
    return sample


def soft(lab: Lab, read: Callable[[Path], Any], data: Path) -> Any:
    """A figure read after the storm: a failure is noted and the run goes on without it."""
    try:
        return read(data)
    except BenchError as exc:
        lab.notes.append(str(exc).splitlines()[0])
        return None


def defended_storm(lab: Lab, data: Path, period: str, loops: int = 1) -> Sample:
    """The storm under ``garrison run``, with the defender's CPU time and its final counters."""
    with defender(lab, data, period, 1) as proc:
        cpu = cpu_seconds(proc.pid)
        seconds = storm(lab.container, lab.n // loops * loops, loops)
        cpu = cpu_seconds(proc.pid) - cpu
    events = (soft(lab, defender_status, data) or {}).get("events", {})
    return Sample(seconds, None, events.get("verdicts"), events.get("handled"), cpu)


def prepare_active(lab: Lab) -> None:
    """A store whose model saw the storm while learning, then turned active."""
    data = lab.work / "active"
    # Longer than readiness plus the storm under a learning defender on a loaded machine
    # (~450 exec/s seen here), so the whole storm is learned before the model turns active.
    period = max(5, math.ceil(lab.n / 150))
    lab.active_period = f"{period}s"
    with defender(lab, data, lab.active_period, 1):
        storm(lab.container, lab.n)
        deadline = time.monotonic() + period + READY_TIMEOUT
        while model_state(data) != "active" and time.monotonic() < deadline:
            time.sleep(0.5)
    state = model_state(data)
    if state != "active":
        raise BenchError(f"the learned model is {state}, not active")
    lab.notes.append(f"active model learned {true_count(data)} execs of {TRUE} in {period} s")


def run_active(lab: Lab, rnd: int) -> Sample:
    return defended_storm(lab, lab.work / "active", lab.active_period)


def auditctl(*args: str) -> str:
    done = subprocess.run(["auditctl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"auditctl {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def run_auditd(lab: Lab, rnd: int) -> Sample:
    auditctl("-a", *AUDIT_RULE)
    try:
        return Sample(storm(lab.container, lab.n))
    finally:
        auditctl("-d", *AUDIT_RULE)


def run_bpftrace(lab: Lab, rnd: int) -> Sample:
    out = lab.work / f"bpftrace-{rnd}.out"
    with bpftrace(container_filter(lab.container), out):
        seconds = storm(lab.container, lab.n)
    found = re.search(r"^@n: (\d+)", out.read_text(), re.MULTILINE)
    return Sample(seconds, int(found.group(1)) if found else 0)


# -- the peers' set-up -------------------------------------------------------------------------


class Auditd:
    """auditd for the run: the one running, or one started here (log in a scratch folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.proc: subprocess.Popen[bytes] | None = None
        self.initial: dict[str, int] = {}
        self.logged: int | None = None  # records of the storm's execs in our own log

    def __enter__(self) -> Auditd:
        self.initial = audit_status()
        with contextlib.suppress(BenchError):  # a rule left by an interrupted run
            auditctl("-d", *AUDIT_RULE)
        if self.initial.get("pid", 0) == 0:
            try:
                self._start()
            except BaseException:
                self.__exit__()  # an auditd that started but did not answer is stopped too
                raise
        return self

    def _start(self) -> None:
        self.folder.mkdir(parents=True)
        (self.folder / "plugins.d").mkdir()
        conf = Path("/etc/audit/auditd.conf").read_text()
        conf = re.sub(r"(?m)^log_file = .*$", f"log_file = {self.folder}/audit.log", conf)
        conf = re.sub(r"(?m)^plugin_dir = .*$", f"plugin_dir = {self.folder}/plugins.d", conf)
        (self.folder / "auditd.conf").write_text(conf)
        (self.folder / "auditd.conf").chmod(0o640)  # auditd refuses a group-writable config
        with (self.folder / "auditd.out").open("ab") as log:
            argv = ["auditd", "-n", "-c", str(self.folder)]
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while audit_status().get("pid") != self.proc.pid:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"auditd did not start: see {self.folder}/auditd.out")
            time.sleep(0.1)
        # Debian's audit.rules raises the kernel's backlog (64 here) to 8192: as users run it.
        auditctl("-b", "8192")

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(BenchError):
            auditctl("-d", *AUDIT_RULE)
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGTERM)  # auditd flushes its log on the way out
        for flag, key in (("-b", "backlog_limit"), ("-e", "enabled")):
            with contextlib.suppress(BenchError):
                auditctl(flag, str(self.initial.get(key, 0)))
        logs = self.folder.glob("audit.log*")
        self.logged = sum(p.read_text(errors="replace").count(f'a1="{MARK}"') for p in logs)


def audit_status() -> dict[str, int]:
    pairs = (line.split() for line in auditctl("-s").splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) >= 2 and p[1].isdigit()}


def ensure_tracefs() -> None:
    """bpftrace finds tracepoints in tracefs, which this machine does not mount by itself
    (kernel notes). It is left mounted: another tool may use it by now."""
    if any(Path(d, "events").is_dir() for d in TRACEFS):
        return
    subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=True)


def container_filter(container: Any) -> str:
    """A bpftrace predicate for the container's execs of ``true`` (its cgroup v2 id)."""
    container.reload()
    pid = container.attrs["State"]["Pid"]
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    mounts = (line.split() for line in Path("/proc/mounts").read_text().splitlines())
    root = next((m[1] for m in mounts if m[2] == "cgroup2"), None)
    if path is None or root is None:
        return 'comm == "true"'
    return f'cgroup == cgroupid("{root}{path}") && comm == "true"'


@contextlib.contextmanager
def bpftrace(predicate: str, out: Path) -> Iterator[None]:
    """bpftrace counting execs, yielded once its probes are attached (BEGIN runs after)."""
    prog = 'BEGIN { printf("ready\\n"); } tracepoint:sched:sched_process_exec '
    prog += f"/{predicate}/ {{ @n = count(); }}"
    with out.open("wb") as sink, out.with_suffix(".err").open("wb") as err:
        proc = subprocess.Popen(["bpftrace", "-B", "none", "-e", prog], stdout=sink, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while "ready" not in out.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"bpftrace did not attach: {out.with_suffix('.err').read_text()}")
            time.sleep(0.05)
        yield
    finally:
        stop_process(proc, signal.SIGINT)  # SIGINT: bpftrace prints its maps, then exits


def peers_available(lab: Lab) -> list[str]:
    wanted = [p for p in ("auditd", "bpftrace") if p in lab.parts]
    if not wanted:
        return []
    try:
        ensure_packages(("auditd", "bpftrace"))
        ensure_tracefs()
    except (GarrisonError, subprocess.CalledProcessError) as exc:
        lab.notes.append(f"peers skipped: {exc}")
        return []
    return wanted


# -- the run -----------------------------------------------------------------------------------

MODES: dict[str, Callable[[Lab, int], Sample]] = {
    "learning": run_learning,
    "active": run_active,
    "auditd": run_auditd,
    "bpftrace": run_bpftrace,
}


def measure_storms(lab: Lab, rounds: int) -> dict[str, Any]:
    lab.container = lab.client.containers.run(DEBIAN.name, ["sleep", "3600"], detach=True)
    try:
        storm(lab.container, 200)  # warm the page cache and the container
        if "active" in lab.parts:
            prepare_active(lab)
        with contextlib.ExitStack() as stack:
            modes = [m for m in ("learning", "active") if m in lab.parts] + peers_available(lab)
            auditd = stack.enter_context(Auditd(lab.work / "audit")) if "auditd" in modes else None
            samples = run_rounds(lab, modes, rounds)
        doc = summarize(samples, lab.n) if samples else {}
        if auditd is not None and auditd.logged is not None:
            doc["auditd"]["seen"] = [auditd.logged / rounds]  # one log for all rounds
        burst = measure_burst(lab, min(rounds, 3)) if "burst" in lab.parts else None
        return {"modes": doc, "burst": burst}
    finally:
        lab.container.remove(force=True)


Row = dict[str, tuple[float, Sample]]  # mode -> (its paired baseline's seconds, its sample)


def run_rounds(lab: Lab, modes: list[str], rounds: int) -> list[Row]:
    """Each mode's storm right after a storm with nothing running (its paired baseline): the
    load of this shared machine drifts within seconds, so a ratio compares neighbours."""
    results: list[Row] = []
    for rnd in range(rounds if modes else 0):
        row: Row = {}
        for mode in modes[rnd % len(modes) :] + modes[: rnd % len(modes)]:
            row[mode] = (storm(lab.container, lab.n), MODES[mode](lab, rnd))
        line = "  ".join(f"{m} {s.seconds:.3f}s/{b:.3f}s" for m, (b, s) in row.items())
        print(f"round {rnd + 1} (mode/none): {line}")
        results.append(row)
    return results


def summarize(rows: list[Row], n: int) -> dict[str, Any]:
    bases = [base for row in rows for base, _ in row.values()]
    modes = {"none": mode_doc("none", [Sample(b) for b in bases], [1.0] * len(bases), n)}
    for mode in MODES:
        pairs = [row[mode] for row in rows if mode in row]
        if pairs:
            ratios = [s.seconds / base for base, s in pairs]
            modes[mode] = mode_doc(mode, [s for _, s in pairs], ratios, n)
    return modes


def mode_doc(mode: str, samples: list[Sample], ratios: list[float], n: int) -> dict[str, Any]:
    median = statistics.median(s.seconds for s in samples)
    return {
        "medianSeconds": median,
        "execRate": n / median,
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "goal": GOALS.get(mode),
        "measuredHereBefore": MEASURED_HERE.get(mode),
        "seconds": [s.seconds for s in samples],
        **{key: present(samples, key) for key in ("seen", "verdicts", "handled", "cpu")},
    }


def present(rows: list[Sample], key: str) -> list[Any] | None:
    values = [getattr(r, key) for r in rows if getattr(r, key) is not None]
    return values or None


def measure_burst(lab: Lab, runs: int) -> dict[str, Any]:
    """Execs seen / made at a high rate: the storm in concurrent loops under a learning
    defender, since one loop alone may run below 1000 exec/s on this machine."""
    made = lab.n // BURST_LOOPS * BURST_LOOPS
    bare, samples, missed = [], [], []
    for run in range(runs):
        bare.append(storm(lab.container, made, BURST_LOOPS))
        data = lab.work / f"burst-{run}"
        samples.append(defended_storm(lab, data, "1h", BURST_LOOPS))
        samples[-1].seen = soft(lab, true_count, data)
        missed.append(missed_counts(soft(lab, defender_status, data) or {}))
        print(f"burst {run + 1}: none {bare[-1]:.3f}s  learning {samples[-1].seconds:.3f}s")
    return {
        "loops": BURST_LOOPS,
        "made": made,
        "seen": [s.seen for s in samples if s.seen is not None],
        "execRates": [made / s.seconds for s in samples],
        "execRatesWithoutDefender": [made / b for b in bare],
        "missed": missed,
    }


def missed_counts(status: dict[str, Any]) -> dict[str, int]:
    """The sensors' own counts of execs they could not read (``garrison status``)."""
    sensors = status.get("sensors") or {}
    exec_sensor, processes = sensors.get("exec") or {}, sensors.get("processes") or {}
    return {
        "execLate": int(exec_sensor.get("late", 0)),
        "execUnread": int((exec_sensor.get("extra") or {}).get("not_in_exec", 0)),
        "processesLate": int(processes.get("late", 0)),
    }


def measure_rss(lab: Lab) -> dict[str, Any]:
    """VmRSS of a fresh defender watching 20 idle busybox containers."""
    idle: list[Any] = []
    try:
        for _ in range(IDLE_CONTAINERS):
            idle.append(lab.client.containers.run(BUSYBOX.name, ["sleep", "3600"], detach=True))
        watched = len(lab.client.containers.list())
        with defender(lab, lab.work / "idle", "1h", watched):
            time.sleep(5)
            vm = proc_status(defender_pid(defender_status(lab.work / "idle")))
        return {"containers": watched, "rssMiB": vm["VmRSS"] / 1024, "hwmMiB": vm["VmHWM"] / 1024}
    finally:
        for container in idle:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, ...)."""
    rows = (line.split() for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {r[0].rstrip(":"): int(r[1]) for r in rows if len(r) == 3 and r[2] == "kB"}


# -- the report --------------------------------------------------------------------------------

COLUMNS = f"{'mode':28} {'seconds':>7} {'exec/s':>6} {'ratio':>6}  {'target':17} {'seen/made':>9} "
COLUMNS += f"{'judged':>6} {'cpu s':>5}  per-round ratios"


def report(doc: dict[str, Any]) -> None:
    n, modes = doc["execs"], doc["storm"]["modes"]
    if modes:
        print(f"\n{n} execs of {TRUE} in {DEBIAN.name}, {doc['rounds']} interleaved rounds")
        print(COLUMNS)
        for mode, m in modes.items():
            print(mode_line(mode, m, n))
        print("seen/made: worst round; judged: exec permission events Garrison answered;")
        print("cpu s: the defender's CPU seconds during the storm (medians)\n")
    burst, idle = doc["storm"]["burst"], doc["idle"]
    if burst:
        print(burst_line(burst))
    if idle:
        print(
            f"defender RSS with {idle['containers']} idle containers: {idle['rssMiB']:.1f} MiB "
            f"(peak {idle['hwmMiB']:.1f} MiB)"
        )
    for note in doc["notes"]:
        print(f"note: {note}")


def burst_line(burst: dict[str, Any]) -> str:
    worst, rates = min(burst["seen"], default=0), burst["execRates"]
    return (
        f"execs seen / execs made, Garrison learning, {burst['loops']} concurrent loops: "
        f"{worst}/{burst['made']} = {worst / burst['made']:.3f} in the worst of "
        f"{len(rates)} runs (goal 1.000) at {min(rates):.0f}-{max(rates):.0f} exec/s "
        f"(without a defender {statistics.median(burst['execRatesWithoutDefender']):.0f} exec/s)"
        f"; sensors' own misses per run {burst['missed']}"
    )


def mode_line(mode: str, m: dict[str, Any], n: int) -> str:
    target = "baseline"
    if m["goal"]:
        target = f"goal <= {m['goal']:.2f} " + ("ok" if m["ratio"] <= m["goal"] else "OVER")
    elif m["measuredHereBefore"]:
        target = f"about {m['measuredHereBefore']:.2f} here"
    seen = f"{min(m['seen']) / n:.3f}" if m["seen"] else "-"
    judged = f"{statistics.median(m['verdicts']):.0f}" if m["verdicts"] else "-"
    cpu = f"{statistics.median(m['cpu']):.2f}" if m["cpu"] else "-"
    rounds = "" if mode == "none" else " ".join(f"{r:.2f}" for r in m["ratios"])
    return (
        f"{LABELS[mode]:28} {m['medianSeconds']:7.3f} {m['execRate']:6.0f} {m['ratio']:6.3f}  "
        f"{target:17} {seen:>9} {judged:>6} {cpu:>5}  {rounds}"
    )


# -- main --------------------------------------------------------------------------------------


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    client = engine.client()
    try:
        ensure_all(client, cache_dir_from_env())
        lab = Lab(client, engine.base_url, work, args.execs, args.only)
        doc: dict[str, Any] = {"execs": args.execs, "rounds": args.rounds, "image": DEBIAN.name}
        doc["storm"] = measure_storms(lab, args.rounds)
        doc["idle"] = measure_rss(lab) if "rss" in lab.parts else None
        doc["notes"] = lab.notes
        return doc
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only",
        type=parts_option(PARTS),
        default=frozenset(PARTS),
        help=f"some of {','.join(PARTS)}",
    )
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), "gb", run_all, report)


if __name__ == "__main__":
    main()
