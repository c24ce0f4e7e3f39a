"""What a loader run by hand may load, decided ahead for the kernel (garrison.policy.loader)."""

from __future__ import annotations

from typing import Any

from garrison.policy import StaticModel
from garrison.policy.compiled import compile_rule
from garrison.policy.loader import KEY_BYTES, killed_at_exec, loader_names, refuses
from garrison.policy.schema import RuntimeRule
from garrison.sensors.events import ProcessEvent

LEARNED = frozenset({"/usr/bin/true", "/usr/bin/nc", "/bin/busybox", "/usr/local/bin/app"})
ACTIVE = StaticModel(state="active", processes=LEARNED)


def policy(**processes: Any):
    return compile_rule(RuntimeRule(name="r", processes=processes))


def test_nothing_is_decided_unless_the_model_is_active_and_unknown_programs_are_refused() -> None:
    assert loader_names(policy(effect="alert"), ACTIVE, LEARNED) is None
    assert loader_names(policy(effect="disable"), ACTIVE, LEARNED) is None
    learning = StaticModel(state="learning", processes=LEARNED)
    assert loader_names(policy(effect="prevent"), learning, LEARNED) is None
    # a deny list alone refuses some names, not the unknown: the kernel cannot tell by name
    assert loader_names(policy(denied={"paths": ["/tmp/*"]}), ACTIVE, LEARNED) is None


def test_the_learned_programs_are_allowed_unless_a_detection_refuses_them_by_name() -> None:
    names = loader_names(policy(effect="prevent", detections={"lateral_movement": "prevent"}),
                         ACTIVE, LEARNED)  # fmt: skip
    assert names == {"/usr/bin/true", "/usr/local/bin/app"}  # nc: lateral movement


def test_a_denied_name_is_left_out_and_an_allowed_one_is_in() -> None:
    denied = {"effect": "prevent", "paths": ["/usr/local/bin/*"]}
    p = policy(effect="block", denied=denied, allowed=["/opt/x"])
    names = loader_names(p, ACTIVE, LEARNED)
    assert names is not None
    assert "/usr/local/bin/app" not in names
    assert "/opt/x" in names
    assert "/usr/bin/true" in names


def test_multi_call_binaries_relative_and_overlong_names_are_never_allowed() -> None:
    long = "/opt/" + "x" * KEY_BYTES
    learned = LEARNED | {"relative/tool", long}
    model = StaticModel(state="active", processes=learned)
    names = loader_names(policy(effect="prevent", detections={"lateral_movement": "alert"}),
                         model, learned)  # fmt: skip
    assert names == {"/usr/bin/true", "/usr/bin/nc", "/usr/local/bin/app"}


def test_a_kernel_kill_the_evaluation_would_not_refuse_is_audited_as_such() -> None:
    event = ProcessEvent(
        "c" * 64, 9, 1, "/usr/bin/true", ("ld.so", "./true"), 0, "root", "", 0.0,
        source="proc_connector", loader="/lib64/ld-linux-x86-64.so.2", killed=True,
    )  # fmt: skip
    found = killed_at_exec(policy(effect="prevent"), event)
    assert (found.effect, found.attackType, found.ruleName) == ("prevent", "unexpectedProcess", "r")
    assert found.msg == (
        "/usr/bin/true launched through the loader /lib64/ld-linux-x86-64.so.2 under a name not "
        "among those it may load (a relative name, or another name of a learned file): killed "
        "at its exec"
    )
    assert refuses([found])
    assert not refuses([])
