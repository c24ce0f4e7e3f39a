"""Every exec off the root file system is recorded, with either process-event source.

1,000 short execs from a tmpfs and 1,000 from a volume, in a learning container: the model
counts 1,000 of each. The mounts carry fanotify mount marks of their own (other_mounts.py),
so each exec is seen while it waits in execve() — a process gone before /proc could be read
(the proc connector's ``late``) is no longer a lost exec.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.devengine import PrivateEngine
from tests.defender.conftest import DefenderProcess
from tests.defender.detections_support import DEBIAN, model_doc
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

EXECS = 1000
STORM = (
    "cp /usr/bin/true /scratch/t && cp /usr/bin/true /data/t && "
    f"for i in $(seq {EXECS}); do /scratch/t; /data/t; done"
)


@pytest.fixture(params=["bpf", "proc_connector"])
def defender(
    request: pytest.FixtureRequest, engine: PrivateEngine, tmp_path: Path
) -> Iterator[DefenderProcess]:
    args = ["--process-events", request.param]
    proc = DefenderProcess(engine, tmp_path / "data", "1h", args).start()
    try:
        yield proc
    finally:
        proc.stop()


def counts(defender: DefenderProcess) -> dict[str, int]:
    doc = model_doc(defender, DEBIAN)
    processes = (doc.get("contents") or doc).get("processes") or []
    return {p["path"]: p["count"] for p in processes}


def test_a_thousand_short_execs_from_a_tmpfs_and_a_volume_are_all_recorded(
    defender: DefenderProcess, run_container: Any, tmp_path: Path
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    box = run_container(
        DEBIAN, ["sleep", "3600"], name=f"offroot-{defender.args[1]}",
        tmpfs={"/scratch": "exec"}, volumes={str(volume): {"bind": "/data", "mode": "rw"}},
    )  # fmt: skip
    wait_for("the container to be watched", lambda: box.id in defender.status()["watching"])
    exec_ok(box, ["bash", "-c", STORM])

    def all_counted() -> bool:
        found = counts(defender)
        return found.get("/scratch/t") == EXECS and found.get("/data/t") == EXECS

    wait_for(f"{EXECS} execs of each file in the model", all_counted)
    sensors = defender.status()["sensors"]
    assert sensors["processes"]["source"] == defender.args[1]
