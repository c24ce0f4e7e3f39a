"""What prevent cannot stop is still audited: with /etc denied (prevent), a write is refused at
open, while a rename into /etc and an unlink under it — no fanotify permission event exists for
them — happen, and each is audited as a denied file that could not be refused. This is the
open-permission guard (``--write-prevention fanotify``); the default, read-only mounts, refuses
those too (test_enforcement_readonly.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from garrison.audit.record import Audit
from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    EPERM,
    audits,
    put_rules,
    state,
    wait_audits,
    watched,
)
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

DENY_ETC = """
rules:
  - name: etc is read-only
    scope: [{containers: ["dirents-*"]}]
    filesystem:
      denied: {effect: prevent, paths: [/etc]}
"""

NOT_REFUSED = "it happened before it could be refused"


def about(defender: DefenderProcess, container_id: str, text: str) -> list[Audit]:
    return [a for a in audits(defender, container=container_id) if text in a.msg]


def test_a_rename_and_a_delete_under_a_denied_dir_are_audited_as_not_refused(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h", args=["--write-prevention", "fanotify"])
    put_rules(defender, DENY_ETC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="dirents-mv")
    watched(defender, deb)

    code, output = deb.exec_run(["sh", "-c", "echo y > /etc/y"])
    assert code != 0, output
    assert EPERM in output.decode()
    exec_ok(deb, ["sh", "-c", "echo x > /tmp/x && mv /tmp/x /etc/x && rm /etc/issue"])
    assert exec_ok(deb, ["cat", "/etc/x"]) == "x\n"  # the rename was not refused
    assert state(deb)["Running"]

    refused = wait_audits(
        defender, "the prevent audit of /etc/y", container=deb.id, effect="prevent"
    )
    assert any("/etc/y" in a.msg for a in refused), refused
    # The write of /tmp/x may be read after the rename, under its new name: an audit of its
    # own (a write the guard did not see opened there). The rename's is the one not refused.
    renamed = lambda: [a for a in about(defender, deb.id, "/etc/x") if a.msg.endswith(NOT_REFUSED)]  # noqa: E731
    moved = wait_for("the audit of the rename", renamed)
    assert [(a.effect, a.type, a.attackType) for a in moved] == [
        ("alert", "filesystem", "explicitlyDeniedFile")
    ]
    assert moved[0].ruleName == "etc is read-only"
    assert moved[0].processPath in ("/usr/bin/mv", "")
    removed = wait_for("the audit of the delete", lambda: about(defender, deb.id, "/etc/issue"))
    assert removed[0].effect == "alert"
    assert "deleted /etc/issue, explicitly denied" in removed[0].msg
    assert removed[0].msg.endswith(NOT_REFUSED)
