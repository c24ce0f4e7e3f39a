"""A defender whose data directory is full: it keeps enforcing, keeps the audits it cannot
store (bounded, the rest counted), and stores them once space returns."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    EPERM,
    active_model,
    audits,
    deny_nc,
    put_rules,
    watched,
)
from tests.support import exec_ok, fill, grow, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

DENY_NC = deny_nc("full-*")

# 4,000 names of one program, made while the model learns, then each run once the model is
# active: 8,000 distinct audits — each exec is a process the model does not know
# (unexpectedProcess) and a binary that is not the image's (driftBinary).
LINKS = "i=0; while [ $i -lt 4000 ]; do ln /bin/true /tmp/u$i; i=$((i + 1)); done"
BURST = "i=0; while [ $i -lt 4000 ]; do /tmp/u$i; i=$((i + 1)); done; echo done"
RUN_AUDITS = {"unexpectedProcess", "driftBinary"}


def burst_audits(defender: DefenderProcess) -> int:
    found = audits(defender, container="full-disk", type="processes")
    return len([a for a in found if a.processPath.startswith("/tmp/u")
                and a.attackType in RUN_AUDITS])  # fmt: skip


def stored_since(defender: DefenderProcess, since: float) -> dict[str, int] | None:
    """The link's counters once a status written after ``since`` says no audit waits."""
    status = defender.status()
    counters = dict(status.get("link") or {})
    fresh = status.get("updatedAt", 0) > since
    return counters if fresh and counters.get("pendingAudits") == 0 else None


def test_a_full_data_directory_keeps_enforcing_and_stores_the_audits_later(
    start_defender: Start, run_container, small_disk: Path, tmp_path: Path
) -> None:
    grow(small_disk, "32m")  # room for the links' audits; filled to the last byte below
    defender = start_defender(learning="1h", data_dir=small_disk, log=tmp_path / "defender.log")
    put_rules(defender, DENY_NC)
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="full-disk"))
    exec_ok(deb, ["sh", "-c", LINKS])
    defender.console_call(lambda c: c.learn_stop(DEBIAN))
    active_model(defender, DEBIAN)
    linked = time.time()
    wait_for("the links' audits stored", lambda: stored_since(defender, linked))
    filler = fill(small_disk)
    try:
        code, output = deb.exec_run(["sh", "-c", BURST])
        assert (code, output.decode().strip()) == (0, "done")
        code, output = deb.exec_run(["/usr/bin/nc", "-h"])  # enforcement goes on
        assert code != 0
        assert EPERM.lower() in output.decode().lower()
    finally:
        filler.unlink()
        grow(small_disk, "96m")
    grown = time.time()
    counters = wait_for("the waiting audits stored", lambda: stored_since(defender, grown))
    assert counters["writeErrors"] >= 1
    assert counters["spoolErrors"] >= 1  # the spool shares the full disk: memory held them
    assert (counters["droppedAudits"], burst_audits(defender)) == (0, 8_000)
    found = audits(defender, container="full-disk")
    assert any(a.effect == "prevent" for a in found)
    assert deb.exec_run(["true"]).exit_code == 0
