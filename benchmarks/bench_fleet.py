"""One console, many hosts: audits stored per second, policy change → every host, the console's
memory and CPU (issue 18).

    sudo .venv/bin/python benchmarks/bench_fleet.py [--hosts 1000] [--audit-rate 6000]
        [--warmup 10] [--window 30] [--policy-changes 3] [--profile-seconds 10]
        [--json-out FILE]

A real console (``garrison console serve --store postgresql://…`` as a process of its own) on
a private PostgreSQL cluster with fsync on, and ``--hosts`` simulated defenders in this
process (asyncio, two TLS connections and one SSLContext per host, each with its own client
certificate). Each host is enrolled first (a token made in the store, then POST
/enrol/v1/hosts with a certificate request made here), then does what ``RemoteLink`` does: on
one connection, audits pile up at its share of ``--audit-rate`` and go in batches of 50-500
(each audit a distinct finding, so each is a row; all that is pending goes at once, in
batches of at most 500, when the console falls behind), and its status goes every 10 s; on
the other, GET /defender/v1/sync held by the console until it has news (25 s at most), with
the host's policies tag and models cursor.

After ``--warmup`` seconds the measured window starts: audits stored are the rows counted in
the database at its start and end, not requests sent. ``--policy-changes`` times in the window
the runtime policy is changed in the store; per host, the time from the commit to the first
sync answer carrying it (a host that has not seen it ``--policy-timeout`` seconds later counts
as missed). The console's RSS is read every half second; the CPU of the console, of PostgreSQL
(the postmaster and its backends) and of this generator are read at the window's ends, with
the machine's, since all share its cores. With ``--profile-seconds``, py-spy samples the
console afterwards, the load going on, and its stacks are summed by function and by library.
Nothing is asserted: a report, and JSON with --json-out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench_enforce import quantiles
from fleet_hosts import LOCAL, Load, enrol_all
from fleet_profile import profile_console
from garrison.fleet.server import open_ca
from garrison.fleet.service import FleetService
from garrison.policy.schema import RuleSet, RuntimeRule
from garrison.policy.stored import RUNTIME_KIND, rules_to_doc
from garrison.store.postgres import PostgresStore
from support import PostgresCluster, cpu_seconds, free_port, private_postgres

# -- the console and its hosts --------------------------------------------------------------------


@contextlib.contextmanager
def console(url: str, work: Path) -> Any:
    port = free_port()
    argv = [sys.executable, "-m", "garrison", "console", "serve", "--store", url,
            "--address", f"{LOCAL}:{free_port()}", "--defender-address", f"{LOCAL}:{port}",
            "--data-dir", str(work / "console")]  # fmt: skip
    log = (work / "console.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(proc, port, work)
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_listening(proc: subprocess.Popen[bytes], port: int, work: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the console exited: {(work / 'console.log').read_text()[-2000:]}")
        if (work / "console" / "listener" / "ca.pem").exists():
            with contextlib.suppress(OSError), socket.create_connection((LOCAL, port), 1):
                return
        time.sleep(0.1)
    raise SystemExit("the console's defender listener did not open within 60 s")


def make_tokens(store: PostgresStore, work: Path, n: int) -> list[str]:
    service = FleetService(store, open_ca(store, work / "console"))
    return [service.make_enrol_token(3600)[0] for _ in range(n)]


def policy(version: int) -> dict[str, Any]:
    return rules_to_doc(RuleSet(rules=[RuntimeRule(name=f"bench-policy-{version}")]))


# -- measuring ----------------------------------------------------------------------------------


class Meter:
    """CPU seconds of the console, of PostgreSQL, of this generator and of the whole machine."""

    def __init__(self, console_pid: int, cluster: PostgresCluster) -> None:
        self.console_pid, self.postmaster = console_pid, cluster.postmaster_pid()

    def read(self) -> dict[str, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        ticks = os.sysconf("SC_CLK_TCK")
        return {
            "console": cpu_seconds(self.console_pid, children=False),
            "postgres": tree_cpu(self.postmaster),  # its living backends: the pool's
            "generator": own.ru_utime + own.ru_stime,
            "machine": (sum(fields[:8]) - fields[3] - fields[4]) / ticks,  # busy: not idle, iowait
            "time": time.monotonic(),
        }


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its living children, a child that ends meanwhile (a
    connection closed) counting for nothing."""
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return cpu_seconds(pid, children=False) + sum(tree_cpu(int(k)) for k in kids)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def shares_of(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Each one's CPU in the window, in cores (1.0: one core all the time)."""
    span = after["time"] - before["time"]
    got = {
        k: (after[k] - before[k]) / span for k in ("console", "postgres", "generator", "machine")
    }
    got["others"] = max(0.0, got["machine"] - got["console"] - got["postgres"] - got["generator"])
    return {k: round(v, 3) for k, v in got.items()}


def rss_mib(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (the peak), MiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line[:5]] = int(line.split()[1]) / 1024
    return found["VmRSS"], found["VmHWM"]


async def sample(pid: int, load: Load, rss: list[float], lag: list[float]) -> None:
    """The console's RSS every half second, and how late this generator's loop wakes (a late
    loop would make the hosts, not the console, the bottleneck)."""
    while not load.stop:
        start = time.monotonic()
        await asyncio.sleep(0.5)
        lag.append(time.monotonic() - start - 0.5)
        rss.append(rss_mib(pid)[0])


def count_audits(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM audits").fetchone()
    return int(row[0]) if row else 0


async def change_policies(store: PostgresStore, load: Load, times: list[float]) -> None:
    for at in times:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        version = load.version + 1
        await asyncio.to_thread(store.set_policy, RUNTIME_KIND, policy(version))
        load.changed_at[version] = time.monotonic()  # committed: from now on a sync carries it
        load.version = version


async def wait_seen(load: Load, hosts: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(load.seen.get(v, [])) >= hosts for v in load.changed_at):
            return
        await asyncio.sleep(0.2)


async def count_every(url: str, seconds: float, until: float, rates: list[float]) -> None:
    """Rows stored per ``seconds``, over the window: how steady the rate was."""
    before, at = await asyncio.to_thread(count_audits, url), time.monotonic()
    while at + seconds <= until + 0.01:
        await asyncio.sleep(at + seconds - time.monotonic())
        now_count, now = await asyncio.to_thread(count_audits, url), time.monotonic()
        rates.append((now_count - before) / (now - at))
        before, at = now_count, now


async def measure(
    args: argparse.Namespace, proc: subprocess.Popen[bytes], port: int, cluster: PostgresCluster,
    work: Path,
) -> dict[str, Any]:  # fmt: skip
    url = cluster.url("garrison")
    store = PostgresStore(url)
    try:
        return await load_and_measure(args, proc, port, cluster, work, store=store)
    finally:
        store.close()


async def load_and_measure(
    args: argparse.Namespace, proc: subprocess.Popen[bytes], port: int, cluster: PostgresCluster,
    work: Path, *, store: PostgresStore,
) -> dict[str, Any]:  # fmt: skip
    url = cluster.url("garrison")
    names = [f"bench-host-{i:04d}" for i in range(args.hosts)]
    started = time.monotonic()
    tokens = await asyncio.to_thread(make_tokens, store, work, args.hosts)
    load = Load(args.audit_rate / args.hosts)
    hosts = await enrol_all(names, tokens, port, work, load)
    enrolled = time.monotonic() - started
    print(f"{args.hosts} hosts enrolled in {enrolled:.1f} s", flush=True)
    rss: list[float] = []
    lag: list[float] = []
    tasks = [asyncio.create_task(h.run()) for h in hosts]
    tasks.append(asyncio.create_task(sample(proc.pid, load, rss, lag)))
    meter = Meter(proc.pid, cluster)
    await asyncio.sleep(args.warmup)
    load.latency.clear()
    rss_start, lag_start = len(rss), len(lag)
    first, cpu0, sent0 = await asyncio.to_thread(count_audits, url), meter.read(), load.sent
    start, rates = time.monotonic(), list[float]()
    step = args.window / args.policy_changes
    times = [start + step * (k + 0.5) for k in range(args.policy_changes)]
    await asyncio.gather(
        change_policies(store, load, times),
        count_every(url, min(5.0, args.window), start + args.window, rates),
        asyncio.sleep(args.window),
    )
    last, cpu1 = await asyncio.to_thread(count_audits, url), meter.read()
    window, sent, rss_end = cpu1["time"] - cpu0["time"], load.sent - sent0, len(rss)
    await wait_seen(load, args.hosts, args.policy_timeout)
    profile = {}
    if args.profile_seconds:
        out = work / "profile.txt"
        profile = await asyncio.to_thread(profile_console, proc.pid, args.profile_seconds, out)
    load.stop = True
    await asyncio.wait(tasks, timeout=30)
    delays = sorted(d for v in load.changed_at for d in load.seen.get(v, []))
    return {
        "hosts": args.hosts,
        "enrolSeconds": round(enrolled, 1),
        "windowSeconds": round(window, 1),
        "audits": {
            "offeredPerSecond": args.audit_rate,
            "stored": last - first,
            "perSecond": round((last - first) / window, 1),
            "intervalRates": [round(r) for r in rates],
            "acceptedPerSecond": round(sent / window, 1),  # answered 200 in the window
            "pendingAtEnd": round(sum(h.pending for h in hosts)),
        },
        "policy": {
            "changes": len(load.changed_at),
            "seconds": {k: round(v, 3) for k, v in quantiles(delays).items()} | {"n": len(delays)},
            "missed": len(load.changed_at) * args.hosts - len(delays),
            "timeoutSeconds": args.policy_timeout,
        },
        "requests": {
            kind: {k: round(v * 1000, 1) for k, v in quantiles(sorted(lat)).items()}
            | {"n": len(lat), "perSecond": round(len(lat) / window, 1)}
            for kind, lat in load.latency.items()
        },
        "errors": load.errors,
        "console": {
            "rssMiB": {
                "steady": round(statistics.median(rss[rss_start:rss_end] or [0.0]), 1),
                "peak": round(max(rss or [0.0]), 1),
                "hwm": round(rss_mib(proc.pid)[1], 1),
            },
        },
        "cpuCores": shares_of(cpu0, cpu1),
        "generatorLagMs": {
            k: round(v * 1000, 1) for k, v in quantiles(sorted(lag[lag_start:])).items()
        },
        "profile": profile,
    }


# -- the run --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument(
        "--audit-rate",
        type=float,
        default=6000.0,
        help="audits/s offered by all hosts together (goal: 5,000 stored)",
    )
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--policy-changes", type=int, default=3)
    parser.add_argument("--policy-timeout", type=float, default=30.0)
    parser.add_argument("--profile-seconds", type=float, default=0.0)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()  # fmt: skip
    # A connection per host at each end: the console inherits this limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="gbf-", dir="/var/tmp"))
    try:
        doc = run(args, work)
    except BaseException:
        print(f"the console's log is kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    report(doc)
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with private_postgres("gbf-pg") as cluster:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as admin:
            admin.execute("CREATE DATABASE garrison")
        with console(cluster.url("garrison"), work) as (proc, port):
            return asyncio.run(measure(args, proc, port, cluster, work))


def report(doc: dict[str, Any]) -> None:
    a, p, cpu = doc["audits"], doc["policy"], doc["cpuCores"]
    print(f"{doc['hosts']} hosts, {doc['windowSeconds']} s measured (enrolment took "
          f"{doc['enrolSeconds']} s)")  # fmt: skip
    print(f"audits stored: {a['perSecond']:.0f}/s ({a['stored']} rows; offered "
          f"{a['offeredPerSecond']:.0f}/s, answered {a['acceptedPerSecond']:.0f}/s; per interval "
          f"{a['intervalRates']}; pending at the end {a['pendingAtEnd']})")  # fmt: skip
    print(f"policy change → host's sync: {p['seconds']} s, {p['missed']} missed")
    for kind, q in doc["requests"].items():
        print(f"  {kind}: {q}")
    print(f"errors: {doc['errors'] or 'none'}")
    print(f"console RSS: {doc['console']['rssMiB']} MiB")
    print(f"CPU (cores): {cpu}; generator loop lag: {doc['generatorLagMs']} ms")
    prof = doc.get("profile") or {}
    for name in ("all", "gil"):
        if name in prof:
            print(f"profile ({name}, {prof[name]['samples']} samples):")
            for part in ("libraries", "functions", "garrison"):
                print(f"  {part}: {prof[name][part]}")
    if "error" in prof:
        print(f"profile failed: {prof['error']}")


if __name__ == "__main__":
    main()
