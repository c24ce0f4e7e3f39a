"""A host as this project's machine kind boots: tracefs is not mounted (nor debugfs, through
which tracefs would be mounted on first use). The defender runs in a mount namespace of its
own where both are unmounted — the host's later mounts still reach it (slave propagation), so
it sees the containers' root file systems — and every BPF program works there: the process
events, and the syscall programs that report writes refused by read-only mounts."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    active_model,
    audits,
    put_rules,
    wait_audits,
    watched,
)
from tests.defender.test_enforcement_readonly import read_only
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

# Unmount every tracefs and debugfs in a new mount namespace, check that none is left (exit
# 97 otherwise: the defender never starts), then run the command given after it.
WITHOUT_TRACEFS = (
    "unshare", "--mount", "--propagation", "slave", "sh", "-c",
    "for m in $(awk '{ for (i = 7; $i != \"-\"; i++); t = $(i + 1) }"
    " t == \"tracefs\" || t == \"debugfs\" { print $5 }' /proc/self/mountinfo | sort -r); do"
    " umount -l \"$m\"; done;"
    " grep -qE ' - (tracefs|debugfs) ' /proc/self/mountinfo && exit 97;"
    " exec \"$@\"",
    "without-tracefs",
)  # fmt: skip

DENY_ETC = """
rules:
  - name: etc is read-only
    scope: [{containers: ["fresh-*"]}]
    filesystem:
      denied: {effect: prevent, paths: [/etc]}
"""


def test_without_tracefs_the_defender_runs_every_bpf_program(
    start_defender: Start, run_container, tmp_path: Path
) -> None:
    shutil.copy("/usr/bin/sleep", tmp_path / "tool")
    defender = start_defender(learning="3s", wrap=WITHOUT_TRACEFS)
    processes = defender.status()["sensors"]["processes"]
    assert (processes["source"], processes["reason"]) == ("bpf", None)

    # An exec off the root file system: only the exec tracepoint sees it.
    deb = run_container(
        DEBIAN,
        ["sleep", "3600"],
        name="fresh-tool",
        volumes={str(tmp_path): {"bind": "/opt/tools", "mode": "ro"}},
    )
    active_model(defender, DEBIAN)
    exec_ok(deb, ["/opt/tools/tool", "0.2"])
    wait_audits(defender, "the mounted tool's audit", container="fresh-tool", type="processes")
    assert {a.processPath for a in audits(defender, container="fresh-tool")} >= {"/opt/tools/tool"}

    # A write refused by a read-only mount: only the syscall programs report it.
    put_rules(defender, DENY_ETC)
    ro = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="fresh-ro"))

    wait_for("/etc read-only in the container", lambda: read_only(ro, "/etc"))
    code, output = ro.exec_run(["sh", "-c", "echo x > /etc/x"])
    assert code != 0, output
    wait_audits(defender, "the refused write's audit", container="fresh-ro", effect="prevent")
    assert any("/etc/x" in a.msg for a in audits(defender, container="fresh-ro"))
