"""``benchmarks/run --only fleet`` at its tiny size: a real console on a private PostgreSQL
cluster, 20 simulated hosts enrolled and reporting, and every figure of the fleet read from
it. It needs no Docker engine, so it runs apart from the whole smoke test (which runs it too).
No time is asserted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_fleet_benchmark_runs_at_tiny_size_and_gives_its_figures(tmp_path: Path) -> None:
    argv = [str(ROOT / "benchmarks" / "run"), "--size", "tiny", "--only", "fleet"]
    done = subprocess.run(
        [*argv, "--out", str(tmp_path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    doc = json.loads((tmp_path / "latest.json").read_text())
    (bench,) = doc["benchmarks"]
    assert bench["name"] == "fleet"
    assert bench["exitCode"] == 0
    figures = {f["key"]: f["value"] for f in doc["figures"]}
    assert set(figures) == {"fleet.audits", "fleet.policy.p99", "fleet.rss", "fleet.cpu"}
    assert None not in figures.values()
    assert bench["raw"]["policy"]["missed"] == 0
    assert bench["raw"]["audits"]["stored"] > 0
