"""What the benchmark scripts share (they run as scripts: this folder is on their path)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat, man 5 proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def remove_state(state_dir: Path) -> None:
    """Remove a scratch engine dir, unless something is still mounted under it."""
    if f" {state_dir}/" not in Path("/proc/self/mountinfo").read_text():
        shutil.rmtree(state_dir, ignore_errors=True)
