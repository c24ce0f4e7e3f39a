"""The judge on its own: which execs the kernel waits for, and what is acted on after."""

from __future__ import annotations

from garrison.defender.judge import Judge, Judged
from garrison.defender.policies import Policies
from garrison.model.book import ModelBook
from garrison.policy import load_rules
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import ProcessEvent, Verdict

DENY_NC = """
- name: no-nc
  processes:
    denied: {effect: prevent, paths: [/usr/bin/nc]}
"""
ALERT_ONLY = """
- name: watch
  processes:
    denied: {effect: alert, paths: [/usr/bin/nc]}
"""
CONTAINER = ContainerInfo("c" * 64, "web", "garrison-test/debian:12", "sha256:" + "1" * 64)


def nc(pid: int = 42) -> ProcessEvent:
    return ProcessEvent(
        container_id=CONTAINER.id,
        pid=pid,
        ppid=1,
        path="/usr/bin/nc",
        argv=("/usr/bin/nc", "-h"),
        uid=0,
        user="root",
        parent_path="/usr/bin/bash",
        time=0.0,
    )


def judge_with(rules: str) -> tuple[Judge, Policies, list[Judged]]:
    policies = Policies("host")
    policies.swap(load_rules(rules))
    policies.add(CONTAINER)
    reports: list[Judged] = []
    return Judge(ModelBook(), policies, reports.append), policies, reports


def test_a_rule_that_can_refuse_makes_the_kernel_wait_for_the_verdict():
    judge, _policies, reports = judge_with(DENY_NC)
    event = nc()
    assert judge.admit(event) is True
    assert judge(event) is Verdict.DENY
    assert [r.refused for r in reports] == [True]


def test_without_such_a_rule_the_exec_goes_on_before_it_is_judged():
    judge, _policies, reports = judge_with(ALERT_ONLY)
    event = nc()
    assert judge.admit(event) is False
    assert judge(event) is Verdict.ALLOW
    assert [r.refused for r in reports] == [False]
    assert reports[0].decisions[0].effect == "alert"


def test_a_refusing_rule_that_arrives_after_the_answer_is_acted_on_after_the_fact():
    judge, policies, reports = judge_with(ALERT_ONLY)
    event = nc()
    assert judge.admit(event) is False  # the kernel is answered: the exec goes on
    policies.swap(load_rules(DENY_NC))
    assert judge(event) is Verdict.DENY
    # Not refused in the kernel: the defender's actions kill the process after the fact.
    assert [r.refused for r in reports] == [False]
    assert reports[0].decisions[0].effect == "prevent"


def test_an_unknown_container_is_never_waited_for():
    judge, _policies, reports = judge_with(DENY_NC)
    stranger = ProcessEvent("d" * 64, 7, 1, "/usr/bin/nc", ("nc",), 0, "root", "", 0.0)
    assert judge.admit(stranger) is False
    assert judge(stranger) is Verdict.ALLOW
    assert reports == []


def test_a_shell_is_judged_before_the_answer_when_reverse_shells_are_looked_for():
    """The reverse-shell check reads the shell's descriptors: a shell let go first may have
    exited before the judge looks."""
    judge, _policies, _reports = judge_with(ALERT_ONLY)  # reverse_shell: alert by default
    shell = ProcessEvent(CONTAINER.id, 43, 1, "/bin/bash", ("bash",), 0, "root", "", 0.0)
    assert judge.admit(shell) is True
    assert judge.admit(nc()) is False


def test_an_exec_refused_in_the_kernel_leaves_nothing_for_the_process_events_to_claim():
    judge, _policies, _reports = judge_with(DENY_NC)
    refused = nc(pid=50)
    assert judge.admit(refused) is True
    assert judge(refused) is Verdict.DENY
    assert judge.claim(50) is None
    allowed = ProcessEvent(CONTAINER.id, 51, 1, "/usr/bin/id", ("id",), 0, "root", "", 0.0)
    judge.admit(allowed)
    judge(allowed)
    assert judge.claim(51) == "/usr/bin/id"
