"""How long ``garrison`` takes to start (issue 17): ``--help`` of the root, of a group and of a
command, a quick command run whole, and ``scan image`` up to its first call to Docker.

    .venv/bin/python benchmarks/bench_cli_start.py [--rounds 20] [--against SRC] [--json-out FILE]

Each command runs as a user runs it, ``python -m garrison ...`` in a process of its own: wall
time from the spawn to the exit, N rounds after one warm-up round, interleaved (the order
rotates each round), median and p90 (nearest rank). The floors are a typer app of one group
and one command printing its ``--help`` and its group's: what any typer command line pays (the
interpreter, typer, rich; and for a group, the pydantic that typer imports to check option
values). Ratios: each command over its floor (``--help`` over the app's, the others over the
group's); with ``--against SRC`` (the ``src`` folder of another tree, e.g. ``git archive`` of
an older commit) also over the same command run from SRC, in the same rounds. Goal:
``--help`` and ``scan --help`` in 0.3 s at most.

No engine and no root needed: ``scan image`` is given a socket where nothing listens, and
``status`` an empty store (both exit 1, as they do then). Nothing is asserted: a table, and
JSON with --json-out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_S = 0.3
GOAL_COMMANDS = ("--help", "scan --help")
ROOT_FLOOR = "floor: a typer app's --help"
GROUP_FLOOR = "floor: its group --help"
FLOORS = {ROOT_FLOOR: ["--help"], GROUP_FLOOR: ["group", "--help"]}
NOWHERE = "unix://{work}/none.sock"  # no engine listens there
# label → (arguments, the exit status expected); {work} and {data} are filled in per run.
COMMANDS: dict[str, tuple[list[str], int]] = {
    "--help": (["--help"], 0),
    "scan --help": (["scan", "--help"], 0),
    "status --help": (["status", "--help"], 0),
    "models list --help": (["models", "list", "--help"], 0),
    "status (run whole, no defender)": (["status", "--data-dir", "{data}"], 1),
    "scan image (to its first Docker call)": (
        ["scan", "image", "busybox", "--docker-host", NOWHERE, "--data-dir", "{data}"],
        1,
    ),
}
FLOOR_APP = '''
import typer
app = typer.Typer(help="The floor.", no_args_is_help=True, pretty_exceptions_enable=False)
group = typer.Typer(help="A group.")
@group.command()
def command(name: str = "x") -> None:
    """A command."""
app.add_typer(group, name="group")
@app.command()
def other() -> None:
    """Another command."""
app()
'''


def command_line(label: str, work: Path, data: Path) -> tuple[list[str], int]:
    if label in FLOORS:
        return [sys.executable, "-c", FLOOR_APP, *FLOORS[label]], 0
    args, code = COMMANDS[label]
    filled = [a.format(work=work, data=data) for a in args]
    return [sys.executable, "-m", "garrison", *filled], code


def environment(src: Path | None) -> dict[str, str]:
    """The user's environment, at 100 columns, on the local store (never a remote console),
    with ``src`` first on the path when given (before the installed garrison)."""
    env = {k: v for k, v in os.environ.items() if k != "GARRISON_CONSOLE_URL"}
    env.update(COLUMNS="100", NO_COLOR="1")
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def run_once(argv: list[str], expected: int, env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    ran = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if ran.returncode != expected:  # a broken command would look fast
        sys.exit(f"{argv[3:]}: exit {ran.returncode}, not {expected}\n{ran.stderr.decode()}")
    return seconds


class Tree:
    """Where garrison is imported from (None: the installed one), with a store of its own."""

    def __init__(self, name: str, src: Path | None, work: Path) -> None:
        self.name, self.env = name, environment(src)
        self.work = work / name
        self.data = self.work / "data"
        self.data.mkdir(mode=0o700, parents=True)

    def time(self, label: str) -> float:
        argv, expected = command_line(label, self.work, self.data)
        return run_once(argv, expected, self.env, self.work)


def measure(trees: list[Tree], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per tree and command; round 0 warms up (and makes the stores), untimed."""
    jobs = [(tree, label) for tree in trees for label in COMMANDS]
    jobs += [(trees[0], label) for label in FLOORS]
    samples: dict[str, dict[str, list[float]]] = {t.name: {} for t in trees}
    for index in range(rounds + 1):
        shift = index % len(jobs)
        for tree, label in jobs[shift:] + jobs[:shift]:
            seconds = tree.time(label)
            if index:
                samples[tree.name].setdefault(label, []).append(seconds)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def floor_of(label: str) -> str:
    """The root's ``--help`` is set against the app's; a group's or a command's against a
    group's (typer checks option values with pydantic only below the root)."""
    return ROOT_FLOOR if label in ("--help", ROOT_FLOOR) else GROUP_FLOOR


def summary(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    mine = samples["current"]
    doc: dict[str, Any] = {}
    for label in [*FLOORS, *COMMANDS]:
        seconds = mine[label]
        median = statistics.median(seconds)
        floor = statistics.median(mine[floor_of(label)])
        row = {"median_s": median, "p90_s": pct(seconds, 0.9), "over_floor": median / floor}
        against = samples.get("against", {}).get(label)
        if against:
            row |= {"against_median_s": statistics.median(against),
                    "over_against": median / statistics.median(against)}  # fmt: skip
        doc[label] = row | {"samples_s": seconds}
    return doc


def report(doc: dict[str, Any]) -> None:
    print(f"{'command':40} {'median':>8} {'p90':>8} {'/floor':>7} {'against':>8} {'/against':>8}")
    for label, row in doc.items():
        against = row.get("against_median_s")
        other = f"{against * 1000:6.0f}ms {row['over_against']:8.2f}" if against else ""
        print(f"{label:40} {row['median_s'] * 1000:6.0f}ms {row['p90_s'] * 1000:6.0f}ms "
              f"{row['over_floor']:7.2f} {other}")  # fmt: skip
    worst = max(doc[label]["median_s"] for label in GOAL_COMMANDS)
    verdict = "met" if worst <= GOAL_S else "MISSED"
    print(f"goal: {' and '.join(GOAL_COMMANDS)} in {GOAL_S} s at most (median): {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--against", type=Path, help="another tree's src folder, to compare")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gbc-") as scratch:
        work = Path(scratch)
        trees = [Tree("current", None, work)]
        if args.against:
            trees.append(Tree("against", args.against.resolve(), work))
        doc = summary(measure(trees, args.rounds))
    report(doc)
    if args.json_out:
        out = {"rounds": args.rounds, "against": str(args.against or ""), "commands": doc}
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
