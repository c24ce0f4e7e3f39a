"""What the benchmark scripts share (they run as scripts: this folder is on their path)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from garrison.devengine import EngineConfig, PrivateEngine, ensure_packages


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat, man 5 proc), and
    (``children``) of its living children: ``garrison run`` is the watchdog, and the defender
    its child."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if not children:
        return own
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in kids if child.isdigit())


def write_mode_ratios(
    path: Path | None, results: list[dict[str, tuple[float, int]]], n: int, modes: Sequence[str]
) -> None:
    """For a storm timed per mode in interleaved rounds (seconds, events counted): per mode,
    the median of its per-round ratios to "none", the ratios, and the fewest events counted
    in a round, as JSON in ``path`` (when given)."""
    if path is None:
        return
    doc: dict[str, Any] = {"n": n, "rounds": len(results), "modes": {}}
    for mode in modes:
        ratios = [r[mode][0] / r["none"][0] for r in results]
        counted = min(r[mode][1] for r in results)
        doc["modes"][mode] = {
            "ratio": statistics.median(ratios),
            "ratios": ratios,
            "counted": counted,
        }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def started_by(status: dict[str, Any], pid: int) -> bool:
    """Is this status the report of the ``garrison run`` started as ``pid`` (the watchdog,
    whose child is the defender that reports; or the defender itself, --no-watchdog)?"""
    watchdog = status.get("watchdog") or {}
    return pid in (status.get("pid"), watchdog.get("supervisorPid"))


def defender_pid(status: dict[str, Any]) -> int:
    """The defender's own pid (under the watchdog, not the pid ``garrison run`` started as)."""
    return int(status.get("pid") or 0)


def remove_state(state_dir: Path) -> None:
    """Remove a scratch engine dir, unless something is still mounted under it."""
    if f" {state_dir}/" not in Path("/proc/self/mountinfo").read_text():
        shutil.rmtree(state_dir, ignore_errors=True)


@contextlib.contextmanager
def bench_engine(engine_dir: Path | None, prefix: str) -> Iterator[tuple[PrivateEngine, Path]]:
    """A private engine (the one running in ``engine_dir`` is reused and left running) and a
    scratch folder in /var/tmp. Both go afterwards; the folder stays, and is named, when the
    run fails (it holds the defenders' logs)."""
    state_dir = engine_dir or Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir="/var/tmp"))
    engine = PrivateEngine(EngineConfig(state_dir=state_dir))
    work = Path(tempfile.mkdtemp(prefix=f"{prefix}w-", dir="/var/tmp"))
    try:
        engine.start()
        yield engine, work
    except BaseException:
        print(f"the defenders' logs are kept in {work}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if not engine.reused:
            engine.stop()
        if engine_dir is None:
            remove_state(state_dir)


def parts_option(choices: Collection[str]) -> Callable[[str], frozenset[str]]:
    """The parser of an ``--only a,b`` option whose parts are among ``choices``."""

    def parse(text: str) -> frozenset[str]:
        chosen = frozenset(p.strip() for p in text.split(",") if p.strip())
        if not chosen or chosen - set(choices):
            raise argparse.ArgumentTypeError(f"choose among {','.join(choices)}")
        return chosen

    return parse


RunAll = Callable[[PrivateEngine, Path, argparse.Namespace], dict[str, Any]]


def run_benchmark(
    args: argparse.Namespace, prefix: str, run_all: RunAll, report: Callable[[dict[str, Any]], None]
) -> None:
    """Run on a private engine (``args.engine_dir`` or a new one), print the report, and
    write the figures to ``args.json_out`` when given."""
    ensure_packages()
    with bench_engine(args.engine_dir, prefix) as (engine, work):
        doc = run_all(engine, work, args)
    report(doc)
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
