"""Forensics: the defender's memory while it captures a big container's bundle, and verdicts
in another container during the capture.

    sudo .venv/bin/python benchmarks/bench_forensics.py [--size-mb 500] [--rounds 3]
        [--storm 500] [--engine-dir DIR] [--json-out FILE]

The real defender (``python -m garrison run``, the default watchdog, a fresh data dir per
round) on a private engine, with two rules put in force by ``garrison rules apply -f``:
``processes.denied: {effect: block, paths: [nc]}`` for containers ``gbf-big-*``, and
``processes.denied: {effect: prevent, paths: ["gbf-*"]}`` for containers ``gbf-storm-*``.

Per round, two garrison-test/debian:12 containers:
- ``gbf-big-…`` filled with ``--size-mb`` MiB under /var/fill: 80% from /dev/urandom (files of
  25 MiB; incompressible), 20% copies of the image's /usr files (as a real file system is
  mixed). Its ``docker export`` is that plus the image's own files.
- ``gbf-storm-…`` holding copies of /usr/bin/true named ``/usr/local/bin/gbf-1`` … (distinct
  files): each exec of one waits for the defender's verdict and is refused (as bench_alerts).

Then: 50 refused execs (warm-up), and a wait until the defender is idle (under 5% of a core
over half a second: the fill's events digested). Storms of M refused execs, each on copies of
its own, timed inside the container (bash's ``$EPOCHREALTIME``):
- **before**: nothing else going on;
- **control export**, **control compress**: while this process itself does what a capture
  does to the machine, without the defender having any part in it: ``docker export`` of the
  big container streamed into a spool file (1 MiB at a time, with its SHA-256), then the spool
  gzipped (level 1) into a file, synced; one storm in each phase;
- **export**: the defender has blocked the big container (``/usr/bin/nc -h`` in it) and its
  capture streams ``docker export`` into its spool file (``.<id>.tar.gz.*.partial`` seen);
- **compress**: the capture gzips the spooled file system into ``<id>.tar.gz.partial`` (past
  1 MiB), if the capture is still going when the storm before ends;
- **after**: the capture done (its index entry ``<id>.json`` written), nothing going on.
Each storm starts as soon as its phase is seen; its overlap is the share of its time that the
phase lasted. The baseline is the mean of **before** and **after** (no capture, the same
defender); the capture's storms are also compared with the control's in the same phase: that
ratio is the defender's own share of the slowdown (its capture thread shares the interpreter
lock with the threads that answer the kernel), the control's ratio the machine's. Each
storm's verdict latency is the defender's own histogram (``verdictLatency.exec``, its
difference over the storm: mean = sum / count). From a second before the block until half a
second after the bundle, a thread reads the defender's ``/proc/PID/status`` (VmRSS, VmHWM; PID
the defender itself, the watchdog's child, where the capture runs) and the bundles folder
every 50 ms. Afterwards the block's capture state is read from ``garrison containers blocked
--json`` (``done`` expected) and the bundle from ``garrison forensics list --json``.

Figures per round: the defender's RSS before the block (median of the second before), its
peak from the block to the bundle (the sampled VmRSS, or VmHWM when it rose past its mark:
a peak between samples), the growth; the capture's time (the manifest's ``created`` to the
bundle's mtime), when its export and gzip phases were seen, the sizes of ``filesystem.tar``
(the spool's) and of the bundle, MiB/s of file system, the defender's CPU meanwhile; each
storm's time and mean verdict latency as ratios to the baseline. Medians over rounds. Nothing
is asserted: a table, and JSON with --json-out (with each round's RSS series).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import json
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_alerts import latency_delta, reported_after
from bench_enforce import BenchError, Defender, Lab, garrison
from garrison.devengine import DEBIAN, PrivateEngine, ensure_all
from garrison.devengine.images import cache_dir_from_env
from garrison.policy import load_rules_file
from support import cpu_seconds, defender_pid, run_benchmark

PREFIX = "gbf"
RULES = f"""rules:
  - name: bench - block nc
    scope: [{{containers: ["{PREFIX}-big-*"]}}]
    processes:
      denied: {{effect: block, paths: [nc]}}
  - name: bench - no {PREFIX} copies
    scope: [{{containers: ["{PREFIX}-storm-*"]}}]
    processes:
      denied: {{effect: prevent, paths: ["{PREFIX}-*"]}}
"""
MIB = 1024 * 1024
RANDOM_SHARE = 0.8
RANDOM_FILE_MIB = 25
WARM = 50  # refused execs before the first storm
PERIOD = 0.05  # the sampler's
PRE_BLOCK = 1.0  # seconds of samples before the block
COMPRESSING = MIB  # the bundle's partial file past this: filesystem.tar is being gzipped
CAPTURE_TIMEOUT = 900.0
STORMS = ("before", "control_export", "control_compress", "export", "compress", "after")
PHASES = ("export", "compress")  # of a capture, and of the control
BASELINE = ("before", "after")  # no capture going on
STORM_FIELDS = ("seconds", "meanUs", "p50BoundUs", "p99BoundUs", "answered", "overlap")
MEMORY_KEYS = ("rssBefore", "rssPeak", "rssGrowth", "rssAfter", "hwmBefore", "hwmAfter")
CAPTURE_KEYS = (
    "seconds", "blockToBundleSeconds", "bundleBytes", "filesystemTarBytes", "mibPerSecond",
    "defenderCpu",
)  # fmt: skip
# Copies of /usr files under /var/fill/usr-K/usr/…, up to a byte budget (several passes when
# /usr is smaller than the budget). One python process: no exec per file (python3-minimal:
# no shutil).
FILL_USR = """
import os, sys
budget, done, k = int(sys.argv[1]), 0, 0
while budget - done > 65536:
    k, before = k + 1, done
    for root, _, files in os.walk("/usr"):
        for name in files:
            src = os.path.join(root, name)
            if os.path.islink(src) or not os.path.isfile(src):
                continue
            size = os.path.getsize(src)
            if size <= budget - done:
                dst = f"/var/fill/usr-{k}{src}"
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with open(src, "rb") as a, open(dst, "wb") as b:
                    b.write(a.read())
                done += size
    if done == before:
        break
print(done)
"""
COPIES = f"""
import os, sys
data = open("/usr/bin/true", "rb").read()
for i in range(1, int(sys.argv[1]) + 1):
    path = f"/usr/local/bin/{PREFIX}-{{i}}"
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, 0o755)
"""


# -- the containers ----------------------------------------------------------------------------


def run_in(container: Any, argv: list[str]) -> str:
    result = container.exec_run(argv)
    if result.exit_code != 0:
        raise BenchError(f"{argv[:2]} failed ({result.exit_code}): {result.output[-300:]!r}")
    return str(result.output.decode().strip())


def fill(container: Any, size_mib: int) -> dict[str, int]:
    """``size_mib`` MiB under /var/fill: random files, then copies of /usr files."""
    random_mib = round(size_mib * RANDOM_SHARE)
    sizes = [RANDOM_FILE_MIB] * (random_mib // RANDOM_FILE_MIB)
    sizes += [random_mib % RANDOM_FILE_MIB] if random_mib % RANDOM_FILE_MIB else []
    dds = "; ".join(
        f"dd if=/dev/urandom of=/var/fill/random-{i} bs=1M count={n} status=none"
        for i, n in enumerate(sizes)
    )
    run_in(container, ["bash", "-c", f"mkdir -p /var/fill && {dds}"])
    budget = (size_mib - random_mib) * MIB
    copied = int(run_in(container, ["python3", "-c", FILL_USR, str(budget)]).split()[-1])
    return {"randomBytes": random_mib * MIB, "copiedBytes": copied}


@contextlib.contextmanager
def containers(lab: Lab, r: int) -> Iterator[tuple[Any, Any]]:
    """The big container (filled) and the storm's (its copies made), removed afterwards."""
    made: list[Any] = []
    try:
        for role in ("big", "storm"):
            name = f"{PREFIX}-{role}-{os.getpid()}-{r}"
            made.append(lab.client.containers.run(
                DEBIAN.name, ["sleep", "infinity"], detach=True, name=name))  # fmt: skip
        big, box = made
        lab.notes.append(f"round {r + 1}: filled {fill(big, lab.args.size_mb)}")
        run_in(box, ["python3", "-c", COPIES, str(WARM + len(STORMS) * lab.args.storm)])
        yield big, box
    finally:
        for container in made:
            container.remove(force=True)


@contextlib.contextmanager
def defender(lab: Lab, data: Path) -> Iterator[Defender]:
    """A fresh data dir with the rules, a defender on it that has them in force."""
    data.mkdir(parents=True)
    rules = lab.work / "rules.yaml"
    rules.write_text(RULES)
    garrison("rules", "apply", "-f", str(rules), "--data-dir", str(data))
    digest = load_rules_file(rules).digest()[:12]
    with Defender(lab, data, "1h") as running:
        running.wait(lambda s: s.get("rules") == digest, f"take rules {digest}")
        yield running


def watching(running: Defender, *boxes: Any) -> None:
    ids = {str(box.id) for box in boxes}
    running.wait(lambda s: ids <= set(s.get("watching") or ()), "watch the containers")


# -- storms ------------------------------------------------------------------------------------


def storm(box: Any, first: int, n: int) -> tuple[float, float]:
    """Execs of gbf-first … (each refused), timed inside the container: start, end."""
    copy = f"/usr/local/bin/{PREFIX}-$i"
    body = f"for i in $(seq {first} {first + n - 1}); do {copy} 2>/dev/null; done"
    script = f"s=$EPOCHREALTIME; {body}; echo $s $EPOCHREALTIME"
    out = box.exec_run(["bash", "-c", script]).output.decode()
    start, end = (float(x.replace(",", ".")) for x in out.split()[-2:])
    return start, end


def timed_storm(running: Defender, box: Any, slot: str) -> dict[str, Any]:
    """One storm (the copies of ``slot``) with the defender's verdict latency over it: the
    difference between its last report before the storm and its first after."""
    m = running.lab.args.storm
    before = running.status()
    start, end = storm(box, WARM + 1 + STORMS.index(slot) * m, m)
    after = reported_after(running, time.time())
    delta = latency_delta(before, after)
    delta.pop("histogram")
    return {"start": start, "end": end, "seconds": end - start, **delta}


# -- the sampler -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # epoch seconds
    rss: int  # bytes, VmRSS of the defender
    hwm: int  # bytes, VmHWM
    partial: int  # bytes of <id>.tar.gz.partial; -1: none
    spool: int  # bytes of the export's spool (.<id>.tar.gz.*.partial); -1: none
    done: bool  # an index entry: the bundle is whole and listed


def memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of ``pid`` in bytes (man 5 proc)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024)


def bundle_files(folder: Path) -> tuple[int, int, bool]:
    partial, spool, done = -1, -1, False
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with contextlib.suppress(FileNotFoundError):  # renamed or removed meanwhile
                if entry.name.endswith(".partial"):
                    size = entry.stat().st_size
                    if entry.name.startswith("."):
                        spool = max(spool, size)
                    else:
                        partial = max(partial, size)
                done = done or entry.name.endswith(".json")
    return partial, spool, done


class Sampler:
    """A thread reading the defender's memory and the bundles folder every PERIOD."""

    def __init__(self, pid: int, folder: Path) -> None:
        self.pid, self.folder = pid, folder
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self.samples.append(self._take())
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def latest(self) -> Sample:
        return self.samples[-1]

    def _take(self) -> Sample:
        rss, hwm = memory(self.pid)
        return Sample(time.time(), rss, hwm, *bundle_files(self.folder))

    def _run(self) -> None:
        while not self._stop.wait(PERIOD):
            try:
                self.samples.append(self._take())
            except (OSError, KeyError, ValueError):  # the defender gone: the run says why
                return

    def wait(self, ready: Callable[[Sample], bool], what: str, timeout: float) -> Sample:
        deadline = time.monotonic() + timeout
        while not ready(self.latest):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise BenchError(f"gave up waiting for {what} ({self.latest})")
            time.sleep(PERIOD / 2)
        return self.latest


# -- one round ---------------------------------------------------------------------------------


def capture_storms(running: Defender, box: Any, sampler: Sampler) -> dict[str, Any]:
    """The storms during the capture: once the export streams, once gzip runs (if still)."""
    out = {}
    phases = (("export", lambda s: s.spool >= 0), ("compress", lambda s: s.partial > COMPRESSING))
    for phase, started in phases:
        seen = sampler.wait(lambda s, f=started: f(s) or s.done, f"the {phase}", 120.0)
        out[phase] = None if seen.done else timed_storm(running, box, phase)
    return out


def block_and_capture(running: Defender, big: Any, box: Any) -> dict[str, Any]:
    pid = defender_pid(running.status())
    with Sampler(pid, running.data_dir / "forensics" / "bundles") as sampler:
        time.sleep(PRE_BLOCK)
        cpu, t_block = cpu_seconds(pid), time.time()
        big.exec_run(["/usr/bin/nc", "-h"])
        storms = capture_storms(running, box, sampler)
        sampler.wait(lambda s: s.done, "the bundle", CAPTURE_TIMEOUT)
        cpu = cpu_seconds(pid) - cpu
        time.sleep(0.5)  # the memory once the capture is over
    return {"pid": pid, "tBlock": t_block, "cpu": cpu, "samples": sampler.samples, **storms}


def capture_state(running: Defender, container_id: str) -> str:
    """The block's capture state as ``containers blocked --json`` says it, once settled."""
    deadline, state = time.monotonic() + 30, "?"
    while time.monotonic() < deadline:
        out = garrison("containers", "blocked", "--json", "--data-dir", str(running.data_dir))
        found = [b for b in json.loads(out) if b.get("containerId") == container_id]
        state = str(found[0].get("capture")) if found else "not blocked"
        if state in ("done", "failed"):
            break
        time.sleep(0.5)
    return state


def bundle_listed(running: Defender) -> dict[str, Any]:
    out = garrison("forensics", "list", "--json", "--data-dir", str(running.data_dir))
    listed = json.loads(out)
    if len(listed) != 1:
        raise BenchError(f"expected one bundle, found {len(listed)}")
    bundle = dict(listed[0])
    bundle["mtime"] = Path(bundle["path"]).stat().st_mtime
    return bundle


def one_round(lab: Lab, r: int) -> dict[str, Any]:
    data = lab.work / f"round-{r}"
    try:
        with defender(lab, data) as running, containers(lab, r) as (big, box):
            watching(running, big, box)
            storm(box, 1, WARM)
            settled = quiet(running)
            reported_after(running, time.time())
            baselines = {"before": timed_storm(running, box, "before")}
            control = control_storms(running, big, box, lab.work)
            got = block_and_capture(running, big, box)
            baselines["after"] = timed_storm(running, box, "after")
            state = capture_state(running, str(big.id))
            bundle = bundle_listed(running)
            status = running.status()
        figures = round_figures(got | control, baselines, bundle, state, status)
        return figures | {"settleSeconds": settled}
    finally:
        shutil.rmtree(data, ignore_errors=True)  # the bundle is big


def quiet(running: Defender, timeout: float = 60.0) -> float:
    """Wait until the defender and its watchdog use under 5% of a core over half a second
    (the fill's events digested); the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        cpu = cpu_seconds(running.pid)
        time.sleep(0.5)
        if cpu_seconds(running.pid) - cpu < 0.025:
            break
    return time.monotonic() - start


class Imitation:
    """What a capture does to the machine, done by this process in a thread: ``docker
    export`` streamed into a spool file with its SHA-256, then the spool gzipped (level 1)
    and synced. ``marks``: when each phase began, and ``done``."""

    def __init__(self, client: Any, container_id: str, folder: Path) -> None:
        self.client, self.container_id = client, container_id
        self.spool, self.bundle = folder / "control.tar", folder / "control.tar.gz"
        self.marks: dict[str, float] = {}
        self.began = {phase: threading.Event() for phase in PHASES}
        self.thread = threading.Thread(target=self._run, name="imitation", daemon=True)

    def _mark(self, phase: str) -> None:
        self.marks[phase] = time.time()
        if phase in self.began:
            self.began[phase].set()

    def _run(self) -> None:
        try:
            self._mark("export")
            digest = hashlib.sha256()
            with self.spool.open("wb") as out:
                for chunk in self.client.api.export(self.container_id, chunk_size=MIB):
                    out.write(chunk)
                    digest.update(chunk)
            self._mark("compress")
            with self.spool.open("rb") as src, gzip.open(self.bundle, "wb", 1) as dst:
                shutil.copyfileobj(src, dst, MIB)
            with self.bundle.open("rb+") as synced:
                os.fsync(synced.fileno())
            self._mark("done")
        finally:
            for event in self.began.values():
                event.set()  # a failure: no waiting for it
            self.spool.unlink(missing_ok=True)
            self.bundle.unlink(missing_ok=True)

    def windows(self) -> dict[str, tuple[float, float]]:
        m = self.marks
        return {"control_export": (m["export"], m["compress"]),
                "control_compress": (m["compress"], m["done"])}  # fmt: skip


def control_storms(running: Defender, big: Any, box: Any, folder: Path) -> dict[str, Any]:
    """A storm in each phase of the imitation; its phases' windows."""
    imitation = Imitation(running.lab.client, str(big.id), folder)
    imitation.thread.start()
    out: dict[str, Any] = {}
    for phase in PHASES:
        imitation.began[phase].wait(CAPTURE_TIMEOUT)
        going = phase in imitation.marks and "done" not in imitation.marks
        out[f"control_{phase}"] = timed_storm(running, box, f"control_{phase}") if going else None
    imitation.thread.join(CAPTURE_TIMEOUT)
    if "done" not in imitation.marks:
        raise BenchError(f"the control capture did not end: {imitation.marks}")
    return out | {"windows": imitation.windows()}


# -- figures -----------------------------------------------------------------------------------


def round_figures(
    got: dict[str, Any],
    baselines: dict[str, Any],
    bundle: dict[str, Any],
    state: str,
    status: dict[str, Any],
) -> dict[str, Any]:
    samples: list[Sample] = got["samples"]
    phases = phase_times(samples)
    created = dt.datetime.fromisoformat(bundle["created"]).timestamp()
    storms = {k: baselines.get(k) or got.get(k) for k in STORMS}
    windows = got["windows"] | capture_windows(phases, bundle["mtime"])
    for key, (start, end) in windows.items():
        if storms[key] is not None:
            storms[key]["overlap"] = overlap(storms[key], start, end)
    return {
        "memory": memory_figures(samples, got["tBlock"], phases["done"]),
        "capture": capture_figures(got, phases, bundle, created) | {"state": state},
        "windows": {k: [a - got["tBlock"], b - got["tBlock"]] for k, (a, b) in windows.items()},
        "storms": storms,
        "ratios": storm_ratios(storms),
        "forensics": status.get("forensics"),
        "defenderRestarted": defender_pid(status) != got["pid"],
    }


def capture_windows(phases: dict[str, float | None], end: float) -> dict[str, tuple[float, float]]:
    """The capture's export (the spool seen to gzip seen) and gzip (to the bundle's mtime)."""
    export, compress = phases["export"] or end, phases["compress"] or end
    return {"export": (export, compress), "compress": (compress, end)}


def capture_figures(
    got: dict[str, Any], phases: dict[str, float | None], bundle: dict[str, Any], created: float
) -> dict[str, Any]:
    seconds = bundle["mtime"] - created
    fs_tar = max(s.spool for s in got["samples"])
    return {
        "seconds": seconds,
        "blockToBundleSeconds": bundle["mtime"] - got["tBlock"],
        "blockToStartSeconds": created - got["tBlock"],
        "phases": {k: v - got["tBlock"] for k, v in phases.items() if v is not None},
        "bundleBytes": bundle["size"],
        "filesystemTarBytes": fs_tar,
        "mibPerSecond": fs_tar / MIB / seconds,
        "defenderCpu": got["cpu"],
        "complete": bundle["complete"],
        "missing": bundle["missing"],
    }


def phase_times(samples: list[Sample]) -> dict[str, float | None]:
    """When the sampler first saw: the bundle's partial, the spool, gzip at work, the index."""
    tests: dict[str, Callable[[Sample], bool]] = {
        "started": lambda s: s.partial >= 0 or s.spool >= 0,
        "export": lambda s: s.spool >= 0,
        "compress": lambda s: s.partial > COMPRESSING,
        "done": lambda s: s.done,
    }
    return {k: next((s.t for s in samples if test(s)), None) for k, test in tests.items()}


def memory_figures(samples: list[Sample], t_block: float, t_done: float | None) -> dict[str, Any]:
    """MiB: RSS before (median of the second before the block), the peak from the block to
    the bundle (VmHWM when it rose past its mark before the block: a peak between samples)."""
    pre = [s for s in samples if s.t < t_block]
    during = [s for s in samples if t_block <= s.t <= (t_done or samples[-1].t)]
    rss_before = statistics.median(s.rss for s in pre)
    hwm_before, hwm_after = pre[-1].hwm, samples[-1].hwm
    peak = max([s.rss for s in during] + [hwm_after if hwm_after > hwm_before else 0])
    mib = {
        "rssBefore": rss_before,
        "rssPeak": peak,
        "rssGrowth": peak - rss_before,
        "rssAfter": samples[-1].rss,
        "hwmBefore": hwm_before,
        "hwmAfter": hwm_after,
    }
    series = [[round(s.t - t_block, 2), round(s.rss / MIB, 1)] for s in samples]
    return {k: v / MIB for k, v in mib.items()} | {"samples": len(samples), "series": series}


def overlap(run: dict[str, Any], start: float, end: float) -> float:
    """The share of a storm's time that the capture was going on."""
    covered = min(run["end"], end) - max(run["start"], start)
    return max(0.0, covered) / run["seconds"]


def storm_ratios(storms: dict[str, Any]) -> dict[str, Any]:
    """Each storm's time and mean verdict latency over the baseline's (the mean of the storms
    before and after the capture: the same defender, nothing captured); and the capture's
    storms over the control's in the same phase."""
    out: dict[str, Any] = {}
    for field in ("seconds", "meanUs"):
        base = statistics.mean(storms[k][field] or 0 for k in BASELINE)
        for key in STORMS:
            out[f"{key}_{field}"] = _over(storms[key], base, field)
        for phase in PHASES:
            control = storms[f"control_{phase}"]
            out[f"{phase}_vsControl_{field}"] = _over(
                storms[phase], control and control[field], field
            )
    return out


def _over(run: dict[str, Any] | None, base: float | None, field: str) -> float | None:
    return run[field] / base if run is not None and run[field] and base else None


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Callable[[dict[str, Any]], Any]) -> float | None:
        values = [v for r in rounds if (v := get(r)) is not None]
        return statistics.median(values) if values else None

    memory = {k: med(lambda r, k=k: r["memory"][k]) for k in MEMORY_KEYS}
    capture = {k: med(lambda r, k=k: r["capture"][k]) for k in CAPTURE_KEYS}
    for phase in ("export", "compress", "done"):
        capture[f"{phase}AfterBlock"] = med(lambda r, p=phase: r["capture"]["phases"].get(p))
    for key in STORMS[1:-1]:  # each phase's seconds, the control's and the capture's
        capture[f"{key}PhaseSeconds"] = med(lambda r, k=key: _span(r["windows"][k]))
    storms = {
        k: {f: med(lambda r, k=k, f=f: (r["storms"][k] or {}).get(f)) for f in STORM_FIELDS}
        for k in STORMS
    }
    ratios = {k: med(lambda r, k=k: r["ratios"][k]) for k in rounds[0]["ratios"]}
    return {"memory": memory, "capture": capture, "storms": storms, "ratios": ratios}


def _span(window: list[float]) -> float:
    return window[1] - window[0]


# -- report and main ---------------------------------------------------------------------------


def report(doc: dict[str, Any]) -> None:
    med, rounds = doc["median"], doc["rounds"]
    print(f"\nforensics capture of a {doc['sizeMb']} MiB fill, {len(rounds)} rounds (medians)")
    mem = med["memory"]
    print(f"  defender RSS before / peak / growth (MiB): {mem['rssBefore']:.1f} / "
          f"{mem['rssPeak']:.1f} / {mem['rssGrowth']:+.1f}  (rounds "
          + " ".join(f"{r['memory']['rssGrowth']:+.1f}" for r in rounds)
          + f"); goal growth < 50 MiB: {'ok' if mem['rssGrowth'] < 50 else 'OVER'}")  # fmt: skip
    print(f"  VmHWM before / after: {mem['hwmBefore']:.1f} / {mem['hwmAfter']:.1f} MiB; "
          f"RSS 0.5 s after: {mem['rssAfter']:.1f} MiB")  # fmt: skip
    report_capture(med["capture"], rounds)
    report_storms(med, rounds, doc["storm"])
    for note in doc["notes"]:
        print(f"note: {note}")


def report_capture(cap: dict[str, Any], rounds: list[dict[str, Any]]) -> None:
    print(
        f"  capture: {cap['seconds']:.1f} s (rounds "
        + " ".join(f"{r['capture']['seconds']:.1f}" for r in rounds)
        + f"), block -> bundle {cap['blockToBundleSeconds']:.1f} s; export seen at "
        f"+{cap['exportAfterBlock'] or 0:.1f} s, gzip at +{cap['compressAfterBlock'] or 0:.1f} s"
    )
    print(f"  filesystem.tar {cap['filesystemTarBytes'] / MIB:.0f} MiB -> bundle "
          f"{cap['bundleBytes'] / MIB:.0f} MiB; {cap['mibPerSecond']:.1f} MiB/s of file system; "
          f"defender CPU {cap['defenderCpu']:.1f} s")  # fmt: skip
    print(f"  phases, capture / control: export {cap['exportPhaseSeconds']:.1f} / "
          f"{cap['control_exportPhaseSeconds']:.1f} s, gzip {cap['compressPhaseSeconds']:.1f} / "
          f"{cap['control_compressPhaseSeconds']:.1f} s")  # fmt: skip
    print("  capture states: " + ", ".join(r["capture"]["state"] for r in rounds))


def report_storms(med: dict[str, Any], rounds: list[dict[str, Any]], m: int) -> None:
    print(f"  {m} refused execs in another container, per storm:")
    print(f"    {'storm':16} {'s':>6} {'mean us':>7} {'p99<=':>6} {'overlap':>7}  "
          f"{'s ratio':>7} {'mean ratio':>10}  rounds (s ratio)")  # fmt: skip
    for key in STORMS:
        s = med["storms"][key]
        if s["seconds"] is None:
            print(f"    {key:16} -")
            continue
        ratios = (_num(med["ratios"].get(f"{key}_{f}")) for f in ("seconds", "meanUs"))
        spread = " ".join(_num(r["ratios"].get(f"{key}_seconds")) for r in rounds)
        shared = "-" if s["overlap"] is None else f"{s['overlap']:.2f}"
        cells = f"{s['seconds']:6.3f} {s['meanUs']:7.0f} {s['p99BoundUs']:6.0f} {shared:>7}"
        print(f"    {key:16} {cells}  {next(ratios):>7} {next(ratios):>10}  {spread}")
    print("    ratios: to the baseline, the mean of before and after (same defender, nothing")
    print("    captured); overlap: share of the storm within its phase; p99<=: bucket bound of")
    print("    the defender's histogram (us), which counts from the read of each event")
    for phase in PHASES:
        cells = (
            f"{what} {_num(med['ratios'].get(f'{phase}_vsControl_{f}'))} ("
            + " ".join(_num(r["ratios"].get(f"{phase}_vsControl_{f}")) for r in rounds)
            + ")"
            for f, what in (("seconds", "storm"), ("meanUs", "mean latency"))
        )
        print(f"  {phase}, capture / control (the defender's own share): " + "; ".join(cells))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    client = engine.client(timeout=600)
    try:
        ensure_all(client, cache_dir_from_env())
        lab = Lab(client, engine.base_url, work, args)
        rounds = []
        for r in range(args.rounds):
            rounds.append(one_round(lab, r))
            print(round_line(r, rounds[-1]))
        doc = {"image": DEBIAN.name, "sizeMb": args.size_mb, "storm": args.storm}
        return doc | {"rounds": rounds, "median": summarize(rounds), "notes": lab.notes}
    finally:
        client.close()


def round_line(r: int, got: dict[str, Any]) -> str:
    mem, cap, ratios = got["memory"], got["capture"], got["ratios"]
    storms = " ".join(f"{k} {_num(ratios[f'{k}_seconds'])}" for k in STORMS[1:-1])
    return (
        f"round {r + 1}: RSS {mem['rssBefore']:.1f} -> {mem['rssPeak']:.1f} MiB, capture "
        f"{cap['seconds']:.1f} s ({cap['mibPerSecond']:.1f} MiB/s, {cap['state']}); storm / "
        f"baseline: {storms}; before {got['storms']['before']['seconds']:.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500, help="MiB written in the container")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--storm", type=int, default=500, help="refused execs per storm (M)")
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), PREFIX, run_all, report)


if __name__ == "__main__":
    main()
