"""Prevent against the real engine: an exec or a write is refused in the kernel (EPERM), the
container runs on, and one audit with effect ``prevent`` says so. Rule changes reach running
containers without restarting anything.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.defender.conftest import BOTH_RUNTIMES, DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    EPERM,
    active_model,
    audits,
    deny_nc,
    put_rules,
    settle,
    state,
    store_rules,
    wait_audits,
    watched,
)
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

DENY_NC = deny_nc("enf-*")

DENY_ETC = """
rules:
  - name: etc is read-only
    scope: [{containers: ["enf-*"]}]
    filesystem:
      denied: {effect: prevent, paths: [/etc]}
"""

# nc.openbsd is learned while this rule is in force: the model knows it, no detection names
# it, so the kernel may be told to skip its execs from then on (an ignore mark).
NC_KNOWN = """
rules:
  - name: netcat allowed
    scope: [{containers: ["enf-*"]}]
    processes:
      detections: {lateral_movement: disable}
"""

NC_DENIED = """
rules:
  - name: netcat denied
    scope: [{containers: ["enf-*"]}]
    processes:
      detections: {lateral_movement: disable}
      denied: {effect: prevent, paths: [nc.openbsd]}
"""

NC_OPENBSD = "/usr/bin/nc.openbsd"


def refused(container, command: str) -> bool:
    code, output = container.exec_run(["sh", "-c", command])
    return code != 0 and EPERM in output.decode()


@BOTH_RUNTIMES
def test_denied_nc_fails_with_eperm_the_container_runs_on_and_one_prevent_audit(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, DENY_NC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="enf-prevent-exec")
    watched(defender, deb)

    code, output = deb.exec_run(["sh", "-c", "/usr/bin/nc -h"])
    assert code == 126, output
    assert f"/usr/bin/nc: {EPERM}" in output.decode()
    assert state(deb)["Running"]
    exec_ok(deb, ["true"])

    wait_audits(defender, "the prevent audit of nc", container=deb.id, effect="prevent")
    settle(defender)
    nc = [a for a in audits(defender, container=deb.id) if a.processPath == "/usr/bin/nc"]
    assert len(nc) == 1, nc
    assert audits(defender, container=deb.id, effect="prevent") == nc
    assert nc[0].effect == "prevent"
    assert nc[0].count == 1
    assert nc[0].attackType == "explicitlyDeniedProcess"
    assert nc[0].ruleName == "no netcat"
    assert nc[0].command == "/usr/bin/nc -h"
    assert state(deb)["Running"]


@BOTH_RUNTIMES
def test_write_under_denied_etc_fails_with_eperm_while_tmp_is_writable(
    start_defender: Start, run_container
) -> None:
    """With ``--write-prevention fanotify``: the open-permission guard, for every rule (the
    default makes plain paths read-only instead: test_enforcement_readonly.py)."""
    defender = start_defender(learning="1h", args=["--write-prevention", "fanotify"])
    put_rules(defender, DENY_ETC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="enf-prevent-write")
    watched(defender, deb)

    code, output = deb.exec_run(["sh", "-c", "echo x > /etc/x"])
    assert code != 0, output
    assert EPERM in output.decode()
    assert exec_ok(deb, ["sh", "-c", "echo y > /tmp/y && cat /tmp/y"]) == "y\n"
    # Nothing was written; the refused O_CREAT open leaves the file empty, as the kernel makes
    # it before it asks (docs/defender.md says so).
    exec_ok(deb, ["test", "!", "-s", "/etc/x"])
    assert state(deb)["Running"]

    found = wait_audits(defender, "the prevent audit of /etc/x", container=deb.id, effect="prevent")
    assert all(a.type == "filesystem" for a in found), found
    assert any("/etc/x" in a.msg for a in found), found
    settle(defender)
    tmp = [a for a in audits(defender, container=deb.id) if "/tmp/y" in a.msg]
    assert tmp == []


@BOTH_RUNTIMES
def test_deny_rule_applied_while_the_container_runs_refuses_its_next_exec(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    deb = run_container(DEBIAN, ["sleep", "3600"], name="enf-hot-rule")
    watched(defender, deb)
    assert not refused(deb, "/usr/bin/nc -h 2>&1; true")
    started, pid = state(deb)["StartedAt"], defender.proc.pid

    store_rules(defender, DENY_NC)
    wait_for("nc to be refused under the new rule", lambda: refused(deb, "/usr/bin/nc -h"), 30)
    assert state(deb)["StartedAt"] == started
    assert defender.proc.pid == pid
    assert defender.proc.poll() is None


@BOTH_RUNTIMES
def test_deny_rule_reaches_an_exec_the_kernel_was_told_to_skip(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="3s")
    put_rules(defender, NC_KNOWN)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="enf-hot-ignored")
    watched(defender, deb)
    exec_ok(deb, ["sh", "-c", f"{NC_OPENBSD} -h 2>/dev/null; true"])
    active_model(defender, DEBIAN)
    deb.exec_run([NC_OPENBSD, "-h"])  # judged once more while active, then skipped
    settle(defender)
    verdicts = defender.status()["events"]["verdicts"]
    deb.exec_run([NC_OPENBSD, "-h"])
    settle(defender)
    assert defender.status()["events"]["verdicts"] == verdicts, "the premise: an ignore mark"

    store_rules(defender, NC_DENIED)
    wait_for("nc.openbsd to be refused under the new rule", lambda: refused(deb, NC_OPENBSD), 30)
