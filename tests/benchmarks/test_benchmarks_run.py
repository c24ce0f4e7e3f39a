"""``benchmarks/run`` at its tiny size, on the session's engine: every benchmark runs to its
end and every figure of the table is read from it. No time is asserted (the figures of a tiny
run mean nothing; docs/performance.md holds a standard run's)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from garrison.devengine import PrivateEngine

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
# Figures a tiny run does not make: the peers need auditd and bpftrace (and bpftrace would
# mount tracefs, which the suite's fresh-machine tests need absent).
NOT_AT_TINY = {"storm.auditd", "storm.bpftrace"}


def test_every_benchmark_runs_at_tiny_size_and_gives_its_figures(
    engine: PrivateEngine, test_images: dict[str, str], tmp_path: Path
) -> None:
    argv = [str(ROOT / "benchmarks" / "run"), "--size", "tiny", "--out", str(tmp_path)]
    argv += ["--engine-dir", str(engine.state_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=1500, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    doc = json.loads((tmp_path / "latest.json").read_text())
    assert [b["exitCode"] for b in doc["benchmarks"]] == [0] * len(doc["benchmarks"])
    names = {b["name"] for b in doc["benchmarks"]}
    some = {"defender", "enforce", "workload", "footprint", "gate", "scan", "cli_start", "fleet"}
    assert names >= some
    missing = {f["key"] for f in doc["figures"] if f["value"] is None} - NOT_AT_TINY
    assert missing == set()
    table = (tmp_path / "latest.md").read_text()
    assert all(f["label"] in table for f in doc["figures"])
    history = (tmp_path / "history.jsonl").read_text().splitlines()
    assert len(history) == 1
    assert json.loads(history[0])["commit"] == doc["commit"]
