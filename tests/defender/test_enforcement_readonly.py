"""File prevent rules on plain paths, enforced by read-only mounts against the real engine:
the kernel refuses the writes (EROFS) without asking the defender about each open, BPF
reports each refusal, and it is audited with effect ``prevent`` under its full path. The
mounts follow rule changes and leave with the defender; what they cannot enforce alone
(globs, a container that could unmount them) keeps the open-permission guard (EPERM)."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from tests.defender.conftest import BOTH_RUNTIMES, DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    EPERM,
    audits,
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
EROFS = "Read-only file system"

DENY_ETC = """
rules:
  - name: etc is read-only
    scope: [{containers: ["ro-*"]}]
    filesystem:
      denied: {effect: prevent, paths: [/etc]}
"""

DENY_CONF_GLOB = """
rules:
  - name: no conf files
    scope: [{containers: ["ro-*"]}]
    filesystem:
      denied: {effect: prevent, paths: ["/etc/*.conf"]}
"""


def read_only(container, path: str) -> bool:
    """Is the mount the container sees at ``path`` read-only (its own mount table)?"""
    code, out = container.exec_run(["grep", f" {path} ", "/proc/self/mountinfo"])
    lines = out.decode().splitlines() if code == 0 else []
    return bool(lines) and lines[-1].split()[5].split(",")[0] == "ro"


def shell(container, command: str) -> tuple[int, str]:
    code, output = container.exec_run(["sh", "-c", command])
    return code, output.decode()


@BOTH_RUNTIMES
def test_writes_under_denied_etc_fail_read_only_and_each_is_audited_as_prevented(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, DENY_ETC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="ro-write")
    watched(defender, deb)
    wait_for("/etc read-only in the container", lambda: read_only(deb, "/etc"))

    for command in (
        "echo x > /etc/x",  # a create
        "cd /etc && echo x > relative",  # relative to the working directory
        "rm /etc/debian_version",  # a delete: the guard could not refuse it
        "echo y > /tmp/y && mv /tmp/y /etc/y",  # a move in: copy then create
        "echo 127.0.0.2 evil >> /etc/hosts",  # Docker's own bind mount
        "chown nobody /etc/issue",  # no write at all: attributes
    ):
        code, output = shell(deb, command)
        assert code != 0, (command, output)
        assert EROFS in output, (command, output)
    assert exec_ok(deb, ["sh", "-c", "echo z > /tmp/z && cat /tmp/z /etc/debian_version"])
    exec_ok(deb, ["test", "!", "-e", "/etc/x"])  # not even an empty file, unlike EPERM
    assert "evil" not in shell(deb, "cat /etc/hosts")[1]  # ctr makes no /etc/hosts
    assert state(deb)["Running"]

    wanted = (
        "/etc/x",
        "/etc/relative",
        "/etc/debian_version",
        "/etc/y",
        "/etc/hosts",
        "/etc/issue",
    )
    wait_for(
        "a prevent audit for each refused write",
        lambda: all(
            any(p in a.msg for a in audits(defender, container=deb.id, effect="prevent"))
            for p in wanted
        ),
    )
    settle(defender)
    found = audits(defender, container=deb.id)
    assert all(a.type == "filesystem" and a.effect == "prevent" for a in found), found
    assert not [a for a in found if "/tmp/" in a.msg]
    deleted = [a for a in found if "/etc/debian_version" in a.msg]
    assert "deleted" in deleted[0].msg, deleted
    files = defender.status()["sensors"]["files"]["extra"]
    assert files.get("write_refused", 0) >= len(wanted), files


@BOTH_RUNTIMES
def test_read_only_mounts_follow_the_rules_and_leave_with_the_defender(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    deb = run_container(DEBIAN, ["sleep", "3600"], name="ro-follow")
    watched(defender, deb)
    exec_ok(deb, ["sh", "-c", "echo a > /etc/a.conf"])

    store_rules(defender, DENY_ETC)  # applied to the running container, nothing restarted
    wait_for("/etc read-only under the new rule", lambda: read_only(deb, "/etc"))
    assert EROFS in shell(deb, "echo b > /etc/b")[1]

    # A glob cannot be a mount: the open-permission guard takes over, the mount goes.
    store_rules(defender, DENY_CONF_GLOB)
    wait_for("the mount removed", lambda: not read_only(deb, "/etc"))
    wait_for("*.conf refused by the guard", lambda: EPERM in shell(deb, "echo c > /etc/c.conf")[1])
    exec_ok(deb, ["sh", "-c", "echo d > /etc/d"])

    put_rules(defender, DENY_ETC)
    wait_for("/etc read-only again", lambda: read_only(deb, "/etc"))
    assert defender.stop(signal.SIGTERM) == 0
    assert not read_only(deb, "/etc")  # a stopped defender enforces nothing
    exec_ok(deb, ["sh", "-c", "echo e > /etc/e"])
    assert state(deb)["Running"]


def test_a_container_that_could_unmount_keeps_the_open_permission_guard(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, DENY_ETC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="ro-sysadmin", cap_add=["SYS_ADMIN"])
    watched(defender, deb)
    wait_for("the write refused", lambda: shell(deb, "echo x > /etc/x")[0] != 0)
    assert EPERM in shell(deb, "echo x > /etc/x")[1]
    assert not read_only(deb, "/etc")
    wait_audits(defender, "the prevent audit", container=deb.id, effect="prevent")


def test_a_read_only_container_is_not_audited_for_its_own_read_only_root(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, DENY_ETC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="ro-root", read_only=True)
    watched(defender, deb)
    wait_for("/etc made read-only by Garrison", lambda: read_only(deb, "/etc"))
    assert EROFS in shell(deb, "echo x > /var/x")[1]  # Docker's --read-only, not a rule
    assert EROFS in shell(deb, "echo x > /etc/x")[1]
    wait_audits(defender, "the audit of /etc/x", container=deb.id, effect="prevent")
    settle(defender)
    assert not [a for a in audits(defender, container=deb.id) if "/var/x" in a.msg]


def test_the_mounts_of_a_defender_killed_outright_are_removed_by_the_next_one(
    start_defender: Start, run_container, tmp_path
) -> None:
    first = start_defender(learning="1h", data_dir=tmp_path / "first")
    put_rules(first, DENY_ETC)
    deb = run_container(DEBIAN, ["sleep", "3600"], name="ro-leftover")
    watched(first, deb)
    wait_for("/etc read-only", lambda: read_only(deb, "/etc"))
    first.stop(signal.SIGKILL)  # no clean-up: the mount stays, and still refuses
    assert read_only(deb, "/etc")

    second = start_defender(learning="1h", data_dir=tmp_path / "second")  # no rules
    watched(second, deb)
    wait_for("the leftover mount removed", lambda: not read_only(deb, "/etc"))
    exec_ok(deb, ["sh", "-c", "echo x > /etc/x"])
    assert read_only(deb, "/proc/sys")  # Docker's own read-only mount is left alone
