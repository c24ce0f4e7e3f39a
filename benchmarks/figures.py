"""The benchmarks ``benchmarks/run`` runs, their sizes, and the figures read from each one's
JSON, each beside its goal (the goals of issues 17 and 20, and of the issues before them).

A figure whose benchmark did not produce it is ``None`` and its verdict ``not measured``; a
figure without a goal (a peer's ratio, a figure for the record) has the verdict ``—``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Better = Literal["lower", "higher"]


@dataclass
class Figure:
    key: str  # stable: scripts compare runs by it
    label: str
    value: float | None
    unit: str  # "x" (a ratio), "ms", "s", "MiB", "%", "/s", "execs"
    goal: float | None = None
    better: Better = "lower"
    spread: str = ""
    verdict: str = ""

    def __post_init__(self) -> None:
        if self.value is None:
            self.verdict = "not measured"
        elif self.goal is None:
            self.verdict = "—"
        else:
            ok = self.value <= self.goal if self.better == "lower" else self.value >= self.goal
            self.verdict = "met" if ok else "MISSED"


@dataclass(frozen=True)
class Bench:
    script: str
    sizes: dict[str, list[str]]
    figures: Callable[[dict[str, Any]], list[Figure]]
    shares_engine: bool = True  # takes --engine-dir
    vulndb: str = ""  # "keep": makes the run's vulnerability database; "use": uses it if made
    needs_engine_dir: bool = False  # always given one (a fresh one when the run shares none)


def dig(doc: Any, *keys: Any) -> Any:
    """doc[k1][k2]…, or None where a key is missing."""
    for key in keys:
        if isinstance(doc, dict):
            doc = doc.get(key)
        elif isinstance(doc, list) and isinstance(key, int) and -len(doc) <= key < len(doc):
            doc = doc[key]
        else:
            return None
    return doc


def span(values: Any, fmt: str = "{:.2f}", what: str = "rounds") -> str:
    """min-max of a list of numbers, and how many."""
    nums = [v for v in values or [] if isinstance(v, int | float)]
    if not nums:
        return ""
    return f"{fmt.format(min(nums))}-{fmt.format(max(nums))} over {len(nums)} {what}"


def quantile_spread(q: dict[str, Any] | None) -> str:
    if not q:
        return ""
    parts = [f"{k} {q[k]:.1f}" for k in ("p50", "p95", "p99", "max") if q.get(k) is not None]
    count = f", n={q['n']}" if q.get("n") is not None else ""
    return ", ".join(parts) + count


# -- each benchmark's figures --------------------------------------------------------------------


def cli_start(doc: dict[str, Any]) -> list[Figure]:
    return [
        Figure(
            f"cli.{label}",
            f"`garrison {label}` start (median)",
            dig(doc, "commands", label, "median_s"),
            "s",
            0.3,
            spread=span(dig(doc, "commands", label, "samples_s"), "{:.3f}", "runs"),
        )
        for label in ("--help", "scan --help")
    ]


def defender(doc: dict[str, Any]) -> list[Figure]:
    modes = dig(doc, "storm", "modes") or {}
    found = []
    for mode, label, goal in (
        ("learning", "exec storm, learning (ratio to no defender)", 1.30),
        ("active", "exec storm, active (ratio to no defender)", 1.03),
        ("auditd", "exec storm, peer: auditd execve rule (ratio)", None),
        ("bpftrace", "exec storm, peer: bpftrace (ratio)", None),
    ):
        m = modes.get(mode) or {}
        found.append(
            Figure(f"storm.{mode}", label, m.get("ratio"), "x", goal, spread=span(m.get("ratios")))
        )
    burst = dig(doc, "storm", "burst")
    if burst:
        missed = burst["made"] - min(burst["seen"], default=0)
        rates = burst.get("execRates") or []
        found.append(
            Figure(
                "storm.missed",
                f"execs missed at ≥ 1,000 exec/s (of {burst['made']})",
                missed,
                "execs",
                0,
                spread=span(rates, "{:.0f}", "runs, exec/s"),
            )
        )
    return found


def enforce(doc: dict[str, Any]) -> list[Figure]:
    block = doc.get("block") or {}
    steps = block.get("stepsMs") or {}
    found = [
        Figure(
            "block.p99",
            "violation → container stopped, p99",
            dig(block, "ms", "p99"),
            "ms",
            100,
            spread=quantile_spread(block.get("ms")),
        ),
        Figure(
            "audit.p99",
            "violation → audit stored, p99",
            dig(steps, "stored", "p99"),
            "ms",
            50,
            spread=quantile_spread(steps.get("stored")),
        ),
    ]
    storms = doc.get("storms") or {}
    for kind, mode, label, goal in (
        ("cat", "file", "open storm (cat), file prevent (ratio)", 1.20),
        ("python", "file", "open storm (python), file prevent (ratio)", 1.20),
        ("exec", "rules", "exec storm, prevent rules (ratio)", 1.03),
    ):
        m = dig(storms, kind, mode) or {}
        found.append(
            Figure(
                f"storm.{kind}.{mode}",
                label,
                m.get("ratio"),
                "x",
                goal,
                spread=span(m.get("ratios")),
            )
        )
    return found


def workload(doc: dict[str, Any]) -> list[Figure]:
    found = []
    for name in ("nginx", "pyapp"):
        for mode in ("learning", "active", "prevent"):
            m = dig(doc, name, mode) or {}
            base = dig(doc, name, "none", "rps")
            baseline = f", {base:.0f}/s" if base else ""
            label = f"{name} req/s, {mode} (ratio to no defender{baseline})"
            found.append(
                Figure(
                    f"{name}.{mode}",
                    label,
                    m.get("ratio"),
                    "x",
                    0.97,
                    "higher",
                    span(m.get("ratios")),
                )
            )
    return found


def footprint(doc: dict[str, Any]) -> list[Figure]:
    found = []
    for row in doc.get("idle") or []:
        n = row["containers"]
        goal_rss, goal_cpu = (60.0, 0.01) if n == 50 else (None, None)
        found.append(
            Figure(
                f"rss.{n}",
                f"defender RSS, {n} idle containers",
                dig(row, "defender", "rssMiB"),
                "MiB",
                goal_rss,
                spread=f"peak {dig(row, 'defender', 'hwmMiB'):.1f} MiB; watchdog "
                f"{dig(row, 'watchdog', 'rssMiB'):.1f} MiB",
            )
        )
        found.append(
            Figure(
                f"cpu.{n}",
                f"defender CPU, {n} idle containers",
                dig(row, "defender", "cpu"),
                "%",
                goal_cpu,
                spread=f"watchdog {dig(row, 'watchdog', 'cpu'):.2%}",
            )
        )
    busy = doc.get("busy")
    if busy:
        found.append(
            Figure(
                "rss.busy",
                "defender RSS, learning a busy container",
                dig(busy, "defender", "rssMiB"),
                "MiB",
                spread=f"CPU {dig(busy, 'defender', 'cpu'):.2%}",
            )
        )
    store = doc.get("store")
    if store:
        found.append(
            Figure(
                "store.mib_per_million",
                "console store size per million audits",
                store["MiBPerMillion"],
                "MiB",
                spread=f"{store['audits']} written, {store['auditsPerSecond']:.0f}/s",
            )
        )
    return found


def alerts(doc: dict[str, Any]) -> list[Figure]:
    t = doc.get("throughput") or {}
    return [
        Figure(
            "alert.p99",
            "violation → alert delivered (webhook), p99",
            t.get("delayP99Ms"),
            "ms",
            spread=f"p50 {t.get('delayP50Ms') or 0:.1f} ms",
        ),
        Figure("alert.rate", "alerts delivered per second", t.get("auditsPerSecond"), "/s"),
    ]


def scan(doc: dict[str, Any]) -> list[Figure]:
    found = []
    for name, image in (doc.get("images") or {}).items():
        for how in ("warm", "cold"):
            m = image.get(how) or {}
            found.append(
                Figure(
                    f"scan.{name}.{how}",
                    f"whole scan of {name}, {how}",
                    m.get("medianSeconds"),
                    "s",
                    2.0,
                    spread=span(m.get("seconds"), "{:.2f}", "runs"),
                )
            )
    return found


def gate(doc: dict[str, Any]) -> list[Figure]:
    found = []
    for name, image in (doc.get("images") or {}).items():
        cached = image.get("cached") or {}
        found.append(
            Figure(
                f"gate.{name}.cached",
                f"gate, cached scan: added to docker create of {name}, p50",
                cached.get("addedP50Ms"),
                "ms",
                5.0,
                spread=f"p99 {cached.get('addedP99Ms') or 0:.1f} ms",
            )
        )
        uncached = image.get("uncached") or {}
        off = uncached.get("scanP50Ms")
        found.append(
            Figure(
                f"gate.{name}.uncached",
                f"gate, first create of {name}: added to docker create, p50",
                uncached.get("addedP50Ms"),
                "ms",
                uncached.get("scanPluginOnP50Ms"),
                spread="goal: the same scan on the same engine"
                + (f"; with the plugin off it took {off:.0f} ms" if off else ""),
            )
        )
    return found


def sensor_modes(prefix: str, what: str, doc: dict[str, Any]) -> list[Figure]:
    return [
        Figure(f"{prefix}.{mode}", f"{what}, {mode} (ratio to none)", m.get("ratio"), "x",
               spread=span(m.get("ratios")))
        for mode, m in (doc.get("modes") or {}).items()
    ]  # fmt: skip


def exec_sensor(doc: dict[str, Any]) -> list[Figure]:
    return sensor_modes("exec_sensor", "exec storm, the exec sensor alone", doc)


def loader(doc: dict[str, Any]) -> list[Figure]:
    return sensor_modes("loader", "loader runs by hand (ld.so PROGRAM), BPF check", doc)


def watchdog(doc: dict[str, Any]) -> list[Figure]:
    q = doc.get("releasedMs") or {}
    bound = doc.get("boundSeconds")
    return [
        Figure(
            "watchdog.p99",
            "defender SIGSTOPped → waiting exec released, p99",
            q.get("p99"),
            "ms",
            bound * 1000 if bound else None,
            spread=quantile_spread(q),
        ),
    ]


def gate_stall(doc: dict[str, Any]) -> list[Figure]:
    q = doc.get("stalled") or {}
    p99 = q.get("p99")
    return [
        Figure(
            "gate_stall.p99",
            "plugin SIGSTOPped → docker ps answers, p99",
            p99 * 1000 if p99 is not None else None,
            "ms",
            spread=quantile_spread({k: v * 1000 for k, v in q.items()}),
        )
    ]


def forensics(doc: dict[str, Any]) -> list[Figure]:
    med = doc.get("median") or {}
    growth = dig(med, "memory", "rssGrowth")
    ratio = dig(med, "ratios", "export_seconds")
    return [
        Figure(
            "forensics.rss_growth",
            "defender RSS growth during a capture",
            growth,
            "MiB",
        ),
        Figure("forensics.verdicts", "refused execs during a capture's export (ratio)", ratio, "x"),
    ]


def fleet(doc: dict[str, Any]) -> list[Figure]:
    n, audits, policy = doc.get("hosts"), doc.get("audits") or {}, doc.get("policy") or {}
    cpu, rss = doc.get("cpuCores") or {}, dig(doc, "console", "rssMiB") or {}
    seconds = policy.get("seconds") or {}
    missed = policy.get("missed")
    return [
        Figure(
            "fleet.audits",
            f"console: audits stored per second from {n} hosts (PostgreSQL, fsync on)",
            audits.get("perSecond"),
            "/s",
            5000,
            "higher",
            f"offered {audits.get('offeredPerSecond', 0):.0f}/s; "
            + span(audits.get("intervalRates"), "{:.0f}", "intervals, /s"),
        ),
        Figure(
            "fleet.policy.p99",
            f"policy change → all {n} hosts' sync, p99",
            seconds.get("p99") if missed == 0 else None,
            "s",
            5.0,
            spread=quantile_spread(seconds) + (f"; {missed} missed" if missed else ""),
        ),
        Figure(
            "fleet.rss",
            f"console RSS with {n} hosts, peak",
            rss.get("peak"),
            "MiB",
            spread=f"steady {rss.get('steady', 0):.0f} MiB",
        ),
        Figure(
            "fleet.cpu",
            f"console CPU with {n} hosts (of one core)",
            cpu.get("console"),
            "%",
            spread=f"PostgreSQL {cpu.get('postgres', 0):.0%}, load generator "
            f"{cpu.get('generator', 0):.0%}, others {cpu.get('others', 0):.0%} of a core; "
            "2 cores shared",
        ),
    ]


STANDARD_FLEET = ["--hosts", "1000", "--audit-rate", "6000", "--warmup", "10", "--window", "30",
                  "--policy-changes", "3", "--profile-seconds", "10"]  # fmt: skip
TINY_FLEET = ["--hosts", "20", "--audit-rate", "2000", "--warmup", "2", "--window", "4",
              "--policy-changes", "1", "--policy-timeout", "10"]  # fmt: skip
STANDARD_ENFORCE = ["--trials", "100", "--rounds", "2", "--opens", "2000", "--execs", "1000"]
BENCHES: dict[str, Bench] = {
    "cli_start": Bench(
        "bench_cli_start.py",
        {"standard": ["--rounds", "5"], "tiny": ["--rounds", "1"]},
        cli_start,
        shares_engine=False,
    ),
    "defender": Bench(
        "bench_defender.py",
        {
            "standard": ["--execs", "2000", "--rounds", "2"],
            "tiny": ["--execs", "40", "--rounds", "1", "--only", "learning,active,burst"],
        },
        defender,
    ),
    "enforce": Bench(
        "bench_enforce.py",
        {
            "standard": STANDARD_ENFORCE,
            "tiny": ["--trials", "2", "--rounds", "1", "--opens", "20", "--execs", "20"],
        },
        enforce,
    ),
    "workload": Bench(
        "bench_workload.py",
        {
            "standard": ["--seconds", "4", "--rounds", "2", "--learn-seconds", "15"],
            "tiny": ["--seconds", "1", "--rounds", "1"],
        },
        workload,
    ),
    "footprint": Bench(
        "bench_footprint.py",
        {
            "standard": ["--containers", "0,10,50,100", "--idle-seconds", "10"],
            "tiny": ["--containers", "0,1", "--idle-seconds", "1", "--audits", "500"],
        },
        footprint,
    ),
    "alerts": Bench(
        "bench_alerts.py",
        {
            "standard": ["--violations", "200", "--storm", "200", "--rounds", "1"],
            "tiny": ["--violations", "5", "--storm", "10", "--rounds", "1", "--only", "throughput"],
        },
        alerts,
    ),
    "scan": Bench(
        "bench_scan.py",
        {
            "standard": ["-n", "100000", "--rounds", "3", "--cli-rounds", "2"],
            "tiny": ["-n", "1000", "--rounds", "1", "--cli-rounds", "1", "--image", "debian"],
        },
        scan,
        shares_engine=False,
    ),
    "gate": Bench(
        "bench_gate.py",
        {
            "standard": ["-n", "100", "--uncached-n", "5", "--rounds", "1"],
            "tiny": ["-n", "3", "--uncached-n", "1", "--rounds", "1", "--advisories", "1000"],
        },
        gate,
        shares_engine=False,
    ),
    "watchdog": Bench(
        "bench_watchdog.py", {"standard": ["--trials", "3"], "tiny": ["--trials", "1"]}, watchdog
    ),
    "gate_stall": Bench(
        "bench_gate_stall.py",
        {"standard": ["--trials", "3"], "tiny": ["--trials", "1"]},
        gate_stall,
        shares_engine=False,
    ),
    "forensics": Bench(
        "bench_forensics.py",
        {
            "standard": ["--size-mb", "200", "--rounds", "1", "--storm", "200"],
            "tiny": ["--size-mb", "5", "--rounds", "1", "--storm", "10"],
        },
        forensics,
    ),
    "exec_sensor": Bench(
        "bench_exec.py",
        {"standard": ["-n", "2000", "--rounds", "3"], "tiny": ["-n", "20", "--rounds", "1"]},
        exec_sensor,
        needs_engine_dir=True,
    ),
    "loader": Bench(
        "bench_loader.py",
        {"standard": ["-n", "1000", "--rounds", "3"], "tiny": ["-n", "20", "--rounds", "1"]},
        loader,
        needs_engine_dir=True,
    ),
    "fleet": Bench(
        "bench_fleet.py",
        {"standard": STANDARD_FLEET, "tiny": TINY_FLEET},
        fleet,
        shares_engine=False,
    ),
}


def figures_of(name: str, doc: dict[str, Any]) -> list[Figure]:
    return BENCHES[name].figures(doc)
