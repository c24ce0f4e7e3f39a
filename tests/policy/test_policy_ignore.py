"""Which files may the kernel skip from now on (Verdict.ALLOW_ALWAYS)."""

from __future__ import annotations

import stat
from typing import Any

from garrison.policy import ExecFacts, RuntimeRule, StaticModel, exec_ignorable
from garrison.policy.compiled import compile_rule
from garrison.sensors.events import ProcessEvent

ACTIVE = StaticModel(state="active", processes=frozenset({"/usr/bin/true", "/bin/sh", "/bin/nc"}))
IMAGE_FILE = ExecFacts(file_mode=stat.S_IFREG | 0o755)


def policy(**sections: Any):
    return compile_rule(RuntimeRule(name="r", **sections))


def exec_(path: str, resolved: str | None = None) -> ProcessEvent:
    return ProcessEvent(
        "c1", 7, 1, path, (path,), 0, "root", "/bin/sh", 0.0,
        resolved_path=path if resolved is None else resolved,
    )  # fmt: skip


def test_a_known_binary_from_the_image_in_an_active_model_may_be_ignored() -> None:
    assert exec_ignorable(policy(), ACTIVE, exec_("/usr/bin/true"), IMAGE_FILE)


def test_nothing_is_ignored_while_learning_or_when_unknown() -> None:
    learning = StaticModel(processes=ACTIVE.processes)
    assert not exec_ignorable(policy(), learning, exec_("/usr/bin/true"), IMAGE_FILE)
    assert not exec_ignorable(policy(), ACTIVE, exec_("/usr/bin/id"), IMAGE_FILE)
    allowed = policy(processes={"allowed": ["/usr/bin/id"]})
    assert exec_ignorable(allowed, ACTIVE, exec_("/usr/bin/id"), IMAGE_FILE)


def test_a_file_called_by_another_name_or_a_multicall_binary_is_never_ignored() -> None:
    assert not exec_ignorable(policy(), ACTIVE, exec_("/bin/sh", "/usr/bin/dash"), IMAGE_FILE)
    assert not exec_ignorable(policy(), ACTIVE, exec_("/bin/sh", ""), IMAGE_FILE)
    busybox = StaticModel(state="active", processes=frozenset({"/bin/busybox"}))
    assert not exec_ignorable(policy(), busybox, exec_("/bin/busybox"), IMAGE_FILE)


def test_drifted_setuid_or_unknown_mode_files_are_never_ignored() -> None:
    event = exec_("/usr/bin/true")
    assert not exec_ignorable(policy(), ACTIVE, event, ExecFacts(file_mode=0o755, drifted=True))
    assert not exec_ignorable(policy(), ACTIVE, event, ExecFacts(file_mode=0o4755))
    assert not exec_ignorable(policy(), ACTIVE, event, ExecFacts())


def test_a_file_with_a_finding_is_judged_every_time() -> None:
    assert not exec_ignorable(policy(), ACTIVE, exec_("/bin/nc"), IMAGE_FILE)


def test_checks_on_what_varies_between_execs_keep_files_judged() -> None:
    true = exec_("/usr/bin/true")
    custom = [{"name": "c", "expression": 'proc.cmdline contains "x"', "effect": "prevent"}]
    assert not exec_ignorable(policy(custom=custom), ACTIVE, true, IMAGE_FILE)
    # Even an alert: after the fact, a short-lived process's parent, user and arguments are
    # gone from /proc before the proc connector can read them.
    custom_alert = [{**custom[0], "effect": "alert"}]
    assert not exec_ignorable(policy(custom=custom_alert), ACTIVE, true, IMAGE_FILE)
    parent = policy(processes={"detections": {"parent_child": "block"}})
    assert not exec_ignorable(parent, ACTIVE, true, IMAGE_FILE)
    parent_alert = policy(processes={"detections": {"parent_child": "alert"}})
    assert not exec_ignorable(parent_alert, ACTIVE, true, IMAGE_FILE)
    miners = policy(processes={"detections": {"crypto_miners": "prevent"}})
    assert not exec_ignorable(miners, ACTIVE, true, IMAGE_FILE)
    shells = policy(processes={"detections": {"reverse_shell": "prevent"}})
    assert not exec_ignorable(shells, ACTIVE, exec_("/bin/sh"), IMAGE_FILE)
    assert exec_ignorable(shells, ACTIVE, true, IMAGE_FILE)
    # A shell even when reverse shells only alert (the default): its descriptors are read in
    # the permission path alone, so an ignored shell could never be found on a socket.
    assert not exec_ignorable(policy(), ACTIVE, exec_("/bin/sh"), IMAGE_FILE)
    no_check = policy(processes={"detections": {"reverse_shell": "disable"}})
    assert exec_ignorable(no_check, ACTIVE, exec_("/bin/sh"), IMAGE_FILE)
