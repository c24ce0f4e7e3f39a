"""Fileless execs and programs run through the loader, as the policy judges them."""

from __future__ import annotations

import dataclasses
from typing import Any

from garrison.policy import NO_MODEL, AttackType, RuntimeRule, evaluate_process
from garrison.policy.compiled import compile_rule
from garrison.sensors.events import ProcessEvent

MEMFD = ProcessEvent(
    "c" * 64, 7, 1, "/memfd:payload", ("sh",), 0, "root", "/usr/bin/python3.11", 0.0,
    source="proc_connector", fileless=True, sha256="ab" * 32, size=125640,
)  # fmt: skip


def policy(**processes: Any):
    return compile_rule(RuntimeRule(name="r", processes=processes))


def test_a_fileless_exec_is_found_with_its_digest_and_size() -> None:
    [found] = evaluate_process(policy(), NO_MODEL, MEMFD)
    assert (found.attackType, found.effect) == (AttackType.FILELESS, "alert")
    assert found.msg == (
        "/memfd:payload launched from a file with no path on any file system (a memfd or a "
        f"deleted file): fileless execution; sha256 {'ab' * 32}, 125640 bytes"
    )


def test_a_fileless_exec_whose_bytes_were_gone_says_so() -> None:
    gone = dataclasses.replace(MEMFD, sha256="", size=None)
    [found] = evaluate_process(policy(), NO_MODEL, gone)
    assert found.msg.endswith("sha256 unknown (its bytes were gone), size unknown")


def test_an_allowed_path_does_not_spare_a_fileless_exec() -> None:
    p = policy(allowed=["/memfd:*"], detections={"fileless": "prevent"})
    assert [(d.attackType, d.effect) for d in evaluate_process(p, NO_MODEL, MEMFD)] == [
        (AttackType.FILELESS, "prevent")
    ]


def test_fileless_at_prevent_refuses_and_the_kernel_kills() -> None:
    p = policy(detections={"fileless": "prevent"})
    assert p.processes.refuses
    assert p.processes.kills_fileless
    quiet = policy(detections={"fileless": "alert"})
    assert not quiet.processes.refuses
    assert not quiet.processes.kills_fileless
    assert policy(detections={"fileless": "block"}).processes.kills_fileless
    assert evaluate_process(policy(detections={"fileless": "disable"}), NO_MODEL, MEMFD) == []


def test_a_program_the_loader_ran_is_judged_as_itself_and_the_loader_named() -> None:
    run = ProcessEvent(
        "c" * 64, 8, 1, "/usr/bin/nc", ("ld.so", "/usr/bin/nc"), 0, "root", "", 0.0,
        loader="/lib64/ld-linux-x86-64.so.2",
    )  # fmt: skip
    [found] = evaluate_process(policy(), NO_MODEL, run)
    assert found.attackType == AttackType.LATERAL_MOVEMENT
    assert found.msg == (
        "/usr/bin/nc launched and is a lateral movement / port scanning tool "
        "(run through the loader /lib64/ld-linux-x86-64.so.2)"
    )
