"""Alerts: audits per second from violation to a webhook receiver; verdict latency while a
channel fails.

    sudo .venv/bin/python benchmarks/bench_alerts.py [--violations 500] [--storm 1000]
        [--rounds 5] [--only throughput,latency] [--engine-dir DIR] [--json-out FILE]

The real defender (``python -m garrison run``, a child process, a fresh store per run) on a
private engine; a garrison-test/debian:12 container named ``gba-…`` holding copies of
/usr/bin/true named ``/usr/local/bin/gba-1`` … (copies: distinct files, none the kernel may
skip); the rule ``processes.denied: {effect: prevent, paths: ["gba-*"]}`` in force. Each exec
of such a copy waits for the defender's verdict, is refused, and is one audit of its own (the
paths differ), so one alert per channel.

1. throughput: a channel ``json://127.0.0.1:PORT/garrison`` to an HTTP receiver in this
   process (apprise's JSON webhook, as a user would set it). N violations from one bash loop in
   the container, each preceded by ``echo $i $EPOCHREALTIME`` (bash's clock, the host's wall
   clock); the receiver notes when each alert arrives and which copy it names. audits/s = N over
   the time from the first violation to the last alert received; the delay of each alert is its
   arrival minus its own violation (p50/p99/max by nearest rank).
2. latency: a storm of M refused execs timed inside the container, with the defender's alert
   channel in one of four states — ``none`` (no channel), ``healthy`` (the receiver above),
   ``silent`` (a server that accepts and never answers: each attempt waits out apprise's 10 s),
   ``refused`` (nothing listens: each attempt fails at once, and is retried with backoff).
   Before the storm a few violations show the channel in that state (an alert received, a
   connection held, a failure reported). The verdict latency is the defender's own histogram
   (``verdictLatency.exec`` of its status, the difference over the storm): its mean (sum /
   count) and the bucket bounds of p50 and p99; the storm's wall time and the defender's CPU
   too. Rounds interleave the modes (order rotated); ratios are medians of per-round ratios
   against ``healthy`` in the same round (and against ``none``). The goal: a failing channel
   changes neither within the noise.

Nothing is asserted: a table, and JSON with --json-out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench_enforce import BenchError, Defender, Lab, garrison, quantiles
from garrison.console import Console
from garrison.devengine import DEBIAN, PrivateEngine, ensure_all
from garrison.devengine.images import cache_dir_from_env
from garrison.policy import load_rules_file
from garrison.sensors.latency import upper_bound
from support import cpu_seconds, parts_option, run_benchmark

PREFIX = "gba"
RULES = f"""rules:
  - name: bench - no {PREFIX}
    scope: [{{containers: ["{PREFIX}-*"]}}]
    processes:
      denied: {{effect: prevent, paths: ["{PREFIX}-*"]}}
"""
MODES = ("none", "healthy", "silent", "refused")
WARM = 3  # violations before a latency storm, to show the channel's state
ARRIVAL_TIMEOUT = 180.0
_INDEX = re.compile(rf"/{PREFIX}-(\d+)\b")


# -- receivers ---------------------------------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """A JSON webhook receiver: when each alert arrived, by the copy its processPath names."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.arrived: dict[int, float] = {}
        self.posts = 0
        self.cond = threading.Condition()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server_address[1]}/garrison"

    def got(self, body: bytes) -> None:
        now = time.time()
        message = str(json.loads(body).get("message", ""))
        found = _INDEX.search(message)
        with self.cond:
            self.posts += 1
            if found:
                self.arrived.setdefault(int(found.group(1)), now)
            self.cond.notify_all()

    def wait(self, indices: range, timeout: float = ARRIVAL_TIMEOUT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: all(i in self.arrived for i in indices), timeout)


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        self.server.got(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def receiving() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Silent:
    """Accepts connections and holds them, never sending a byte: a receiver that hangs."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.sock.getsockname()[1]}/garrison"

    def _accept(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                self.held.append(self.sock.accept()[0])

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"json://127.0.0.1:{probe.getsockname()[1]}/garrison"


# -- the container and the defender ------------------------------------------------------------


def prepare(container: Any, n: int) -> None:
    """Copies of /usr/bin/true as gba-1 … gba-n (before any defender: cp is an exec too)."""
    loop = f"for i in $(seq {n}); do cp /usr/bin/true /usr/local/bin/{PREFIX}-$i; done"
    result = container.exec_run(["bash", "-c", loop])
    if result.exit_code != 0:
        raise BenchError(f"copies not made: {result.output[-300:]!r}")


def violate(container: Any, first: int, n: int) -> dict[int, float]:
    """Exec gba-first … in one bash loop (each refused); bash's clock just before each."""
    loop = (
        f'for i in $(seq {first} {first + n - 1}); do echo "$i $EPOCHREALTIME"; '
        f"/usr/local/bin/{PREFIX}-$i 2>/dev/null; done; true"
    )
    out = container.exec_run(["bash", "-c", loop]).output.decode()
    times = {}
    for line in out.splitlines():
        index, _, when = line.partition(" ")
        if index.isdigit():
            times[int(index)] = float(when.replace(",", "."))
    return times


def storm(container: Any, n: int) -> float:
    """n refused execs, timed inside the container (the loop only)."""
    body = f"for i in $(seq {n}); do /usr/local/bin/{PREFIX}-$i 2>/dev/null; done"
    script = f"s=$EPOCHREALTIME; {body}; echo $s $EPOCHREALTIME"
    out = container.exec_run(["bash", "-c", script]).output.decode()
    start, end = (float(x.replace(",", ".")) for x in out.split()[-2:])
    return end - start


@contextlib.contextmanager
def defender(lab: Lab, name: str, url: str | None, container: Any) -> Iterator[Defender]:
    """A fresh store with the rule (and the channel ``hook`` when ``url``), a defender on it
    that has the rule in force and watches the container."""
    data = lab.work / name
    data.mkdir(parents=True)
    if url:
        garrison("alerts", "channels", "add", "hook", url, "--data-dir", str(data))
    rules = lab.work / "rules.yaml"
    rules.write_text(RULES)
    garrison("rules", "apply", "-f", str(rules), "--data-dir", str(data))
    digest = load_rules_file(rules).digest()[:12]
    with Defender(lab, data, "1h") as running:
        running.wait(
            lambda s: s.get("rules") == digest and container.id in (s.get("watching") or ()),
            "watch the container under the rule",
        )
        yield running


def alerts_status(running: Defender) -> dict[str, Any]:
    with Console.open(running.data_dir) as console:
        return dict((console.status().get("alerts") or {}).get("channels", {}).get("hook") or {})


def reported_after(running: Defender, moment: float) -> dict[str, Any]:
    """The defender's first status report written after ``moment``."""
    return running.wait(lambda s: float(s.get("updatedAt") or 0) > moment, "report")


def wait_until(what: str, probe: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise BenchError(f"gave up waiting for {what}")
        time.sleep(0.05)


# -- 1. throughput -----------------------------------------------------------------------------


def throughput_round(lab: Lab, container: Any, r: int) -> dict[str, Any]:
    n = lab.args.violations
    with receiving() as rx, defender(lab, f"tp-{r}", rx.url, container) as running:
        made = violate(container, 1, n)
        if not rx.wait(range(1, n + 1)):
            missing = n - len(rx.arrived)
            raise BenchError(f"{missing} of {n} alerts never arrived (see {running.log})")
        health = alerts_status(running)
    first, last = min(made.values()), max(rx.arrived.values())
    delays = sorted((rx.arrived[i] - t) * 1000 for i, t in made.items())
    return {
        "violations": n,
        "seconds": last - first,
        "auditsPerSecond": n / (last - first),
        "loopSeconds": max(made.values()) - first,
        "delayMs": quantiles(delays),
        "posts": rx.posts,
        "channel": health,
    }


def measure_throughput(lab: Lab, container: Any) -> dict[str, Any]:
    rounds = []
    for r in range(lab.args.rounds):
        rounds.append(throughput_round(lab, container, r))
        got = rounds[-1]
        print(f"throughput round {r + 1}: {got['auditsPerSecond']:.1f} audits/s, delay p50 "
              f"{got['delayMs']['p50']:.0f} ms p99 {got['delayMs']['p99']:.0f} ms")  # fmt: skip
    return {
        "rounds": rounds,
        "auditsPerSecond": statistics.median(r["auditsPerSecond"] for r in rounds),
        "delayP50Ms": statistics.median(r["delayMs"]["p50"] for r in rounds),
        "delayP99Ms": statistics.median(r["delayMs"]["p99"] for r in rounds),
    }


# -- 2. verdict latency with a failing channel -------------------------------------------------


def latency_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    a = after.get("verdictLatency", {}).get("exec", {})
    b = before.get("verdictLatency", {}).get("exec", {})
    delta = {
        "le": a["le"],
        "buckets": [x - y for x, y in zip(a["buckets"], b["buckets"], strict=True)],
        "count": a["count"] - b["count"],
        "sum": a["sum"] - b["sum"],
    }
    count = delta["count"]
    return {
        "answered": count,
        "meanUs": delta["sum"] / count * 1e6 if count else None,
        "p50BoundUs": (upper_bound(delta, 0.5) or 0) * 1e6,
        "p99BoundUs": (upper_bound(delta, 0.99) or 0) * 1e6,
        "histogram": delta,
    }


@dataclass
class Channels:
    """The receivers the latency modes point their channel at."""

    rx: Receiver
    silent: Silent
    refused: str

    def url(self, mode: str) -> str | None:
        return {"healthy": self.rx.url, "silent": self.silent.url, "refused": self.refused}.get(
            mode
        )

    def ready(self, mode: str, running: Defender, warm: range, held: int) -> None:
        """Wait until the channel is seen in its state: an alert received, a connection
        held (more than ``held``), a failure reported."""
        if mode == "healthy":
            wait_until("the healthy channel's alert", lambda: self.rx.wait(warm, 0.05))
        elif mode == "silent":
            wait_until("the silent receiver's connection", lambda: len(self.silent.held) > held)
        elif mode == "refused":
            wait_until("a failure reported", lambda: alerts_status(running).get("failures"))


def latency_run(lab: Lab, container: Any, mode: str, run: int, ch: Channels) -> dict[str, Any]:
    """One storm under a fresh defender whose channel is in ``mode``'s state."""
    m = lab.args.storm
    warm = range(m + 1 + WARM * run, m + 1 + WARM * (run + 1))  # copies of its own
    with defender(lab, f"lat-{run}", ch.url(mode), container) as running:
        held = len(ch.silent.held)
        violate(container, warm.start, WARM)
        ch.ready(mode, running, warm, held)
        before = reported_after(running, time.time())  # the warm-up's verdicts in it
        cpu = cpu_seconds(running.pid)
        seconds = storm(container, m)
        cpu = cpu_seconds(running.pid) - cpu
        after = reported_after(running, time.time())
        health = alerts_status(running)
    return {"seconds": seconds, "cpu": cpu, **latency_delta(before, after), "channel": health}


def measure_latency(lab: Lab, container: Any) -> dict[str, Any]:
    rows: list[dict[str, dict[str, Any]]] = []
    silent = Silent()
    try:
        with receiving() as rx:
            channels = Channels(rx, silent, dead_url())
            for r in range(lab.args.rounds):
                order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
                row = {}
                for mode in order:
                    row[mode] = latency_run(
                        lab, container, mode, len(rows) * 10 + len(row), channels
                    )
                rows.append(row)
                cells = (
                    f"{k} {v['seconds']:.2f}s {v['meanUs'] or 0:.0f}us" for k, v in row.items()
                )
                print(f"latency round {r + 1}: " + "  ".join(cells))
    finally:
        silent.close()
    return summarize_latency(rows)


def summarize_latency(rows: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        got = [r[mode] for r in rows]
        out[mode] = {
            "medianSeconds": statistics.median(g["seconds"] for g in got),
            "medianMeanUs": statistics.median(g["meanUs"] or 0 for g in got),
            "p50BoundUs": statistics.median(g["p50BoundUs"] for g in got),
            "p99BoundUs": statistics.median(g["p99BoundUs"] for g in got),
            "answered": [g["answered"] for g in got],
            "cpu": [g["cpu"] for g in got],
            "channel": [g["channel"] for g in got],
            "runs": got,
        }
        for base in ("healthy", "none"):
            for key, field_ in (("seconds", "seconds"), ("meanUs", "meanUs")):
                ratios = [g[field_] / r[base][field_] for g, r in zip(got, rows, strict=True)
                          if g[field_] and r[base][field_]]  # fmt: skip
                out[mode][f"{key}RatiosTo_{base}"] = ratios
                out[mode][f"{key}RatioTo_{base}"] = statistics.median(ratios) if ratios else None
    return out


# -- report and main ---------------------------------------------------------------------------


def report(doc: dict[str, Any]) -> None:
    tp = doc.get("throughput")
    if tp:
        n = tp["rounds"][0]["violations"]
        print(f"\n1. violation -> webhook receiver: {n} distinct refused execs, "
              f"{len(tp['rounds'])} rounds (medians)")  # fmt: skip
        print(
            f"   audits/s {tp['auditsPerSecond']:.1f} (rounds "
            + " ".join(f"{r['auditsPerSecond']:.1f}" for r in tp["rounds"])
            + ")"
        )
        print(f"   delay violation -> receipt: p50 {tp['delayP50Ms']:.0f} ms, "
              f"p99 {tp['delayP99Ms']:.0f} ms")  # fmt: skip
        loop = statistics.median(r["loopSeconds"] for r in tp["rounds"])
        print(f"   the violations themselves took {loop:.2f} s (the bash loop)")
    lat = doc.get("latency")
    if lat:
        report_latency(lat, doc["storm"])


def report_latency(lat: dict[str, Any], m: int) -> None:
    print(f"\n2. {m} refused execs per storm, verdict latency by the channel's state (medians)")
    print(f"   {'mode':8} {'storm s':>8} {'mean us':>8} {'p50<=':>6} {'p99<=':>6} {'cpu s':>6}"
          f"  {'storm/healthy':>13} {'mean/healthy':>12}  answered  channel")  # fmt: skip
    for mode in MODES:
        m_ = lat[mode]
        last = m_["channel"][-1]
        state = f"sent {last.get('sent', 0)} failed {last.get('failures', 0)}" if last else "-"
        print(
            f"   {mode:8} {m_['medianSeconds']:8.3f} {m_['medianMeanUs']:8.0f} "
            f"{m_['p50BoundUs']:6.0f} {m_['p99BoundUs']:6.0f} {statistics.median(m_['cpu']):6.2f}"
            f"  {_ratio(m_, 'seconds'):>13} {_ratio(m_, 'meanUs'):>12}  "
            f"{min(m_['answered']):8}  {state}"
        )
    print("   ratios: median of per-round ratios to the healthy channel in the same round;")
    print("   p50<= / p99<=: bucket bounds of the defender's histogram (us)")
    print("   to no channel (none), median of per-round ratios (rounds):")
    for mode in MODES[1:]:
        row = lat[mode]
        cells = (
            f"{what} {row[f'{key}RatioTo_none'] or 0:.3f} ("
            + " ".join(f"{x:.2f}" for x in row[f"{key}RatiosTo_none"])
            + ")"
            for key, what in (("seconds", "storm"), ("meanUs", "mean latency"))
        )
        print(f"   {mode:8} " + "; ".join(cells))


def _ratio(row: dict[str, Any], key: str) -> str:
    value = row[f"{key}RatioTo_healthy"]
    spread = row[f"{key}RatiosTo_healthy"]
    if value is None:
        return "-"
    return f"{value:.3f} ({min(spread):.2f}-{max(spread):.2f})"


def run_all(engine: PrivateEngine, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"  # the receivers are on loopback
    client = engine.client()
    try:
        ensure_all(client, cache_dir_from_env())
        lab = Lab(client, engine.base_url, work, args)
        name = f"{PREFIX}-box-{os.getpid()}"
        container = client.containers.run(DEBIAN.name, ["sleep", "infinity"], detach=True,
                                          name=name)  # fmt: skip
        try:
            prepare(container, max(args.violations, args.storm) + WARM * 10 * (args.rounds + 1))
            doc: dict[str, Any] = {"image": DEBIAN.name, "storm": args.storm}
            doc["throughput"] = (
                measure_throughput(lab, container) if "throughput" in args.only else None
            )
            doc["latency"] = measure_latency(lab, container) if "latency" in args.only else None
            return doc
        finally:
            container.remove(force=True)
    finally:
        client.close()


PARTS = ("throughput", "latency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--violations", type=int, default=500, help="throughput: N")
    parser.add_argument("--storm", type=int, default=1000, help="latency: refused execs (M)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--only", type=parts_option(PARTS), default=frozenset(PARTS), help="throughput, latency"
    )
    parser.add_argument("--engine-dir", type=Path, help="engine state dir (default: a new one)")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    run_benchmark(parser.parse_args(), PREFIX, run_all, report)


if __name__ == "__main__":
    main()
