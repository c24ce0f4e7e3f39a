"""Bad input and faults: a malformed rule file is refused whole and the rules in force stay; a
container removed between the verdict and the block crashes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    EPERM,
    garrison,
    put_rules,
    settle,
    wait_audits,
    wait_stopped,
    watched,
    watching,
)
from tests.support import wait_for

Start = Callable[..., DefenderProcess]

GOOD = """
rules:
  - name: no netcat
    scope: [{containers: ["enf-*"]}]
    processes:
      denied: {effect: prevent, paths: [nc]}
"""

# Each is wrong in one place only, after a valid first rule: the file must be refused whole.
MALFORMED = {
    "effect": (
        "processes:\n      denied: {effect: deny, paths: [nc]}",
        "rule 'faulty', processes.denied.effect: Input should be",
    ),
    "unknown key": ("processes:\n      efect: block", "rule 'faulty', processes.efect"),
    "expression": (
        "custom:\n      - {name: shell, expression: 'proc.name = ', effect: block}",
        "rule 'faulty', custom rule 'shell': expression: line 1, column 13",
    ),
    "prevent on network": ("network: {effect: prevent}", "rule 'faulty', network.effect"),
    "yaml": ("processes: {effect: block", "line 8, column 1"),
}

LONG_NAME = "malformed-rules-with-a-long-name-as-users-give-them.yaml"


def malformed_file(tmp_path: Path, fault: str) -> Path:
    text = f"""
rules:
  - name: fine
    scope: [{{containers: ["ok-*"]}}]
    processes: {{effect: block}}
  - name: faulty
    {fault}
"""
    path = tmp_path / LONG_NAME
    path.write_text(text)
    return path


def apply_good_then_malformed(tmp_path: Path, kind: str) -> tuple[str, str, str]:
    """Rules applied, then a malformed file: (export before, the refusal's stderr, export after)."""
    data = str(tmp_path / "data")
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    applied = garrison("rules", "apply", "-f", str(good), "--data-dir", data)
    assert applied.returncode == 0, applied.stderr
    before = garrison("rules", "export", "--data-dir", data).stdout
    assert "no netcat" in before
    bad = malformed_file(tmp_path, MALFORMED[kind][0])
    refused = garrison("rules", "apply", "-f", str(bad), "--data-dir", data)
    assert refused.returncode == 1, refused.stdout
    assert refused.stdout == ""
    after = garrison("rules", "export", "--data-dir", data).stdout
    return before, refused.stderr, after


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_rule_file_is_refused_whole_with_status_1_and_the_rules_stay(
    tmp_path: Path, kind: str
) -> None:
    before, stderr, after = apply_good_then_malformed(tmp_path, kind)
    assert after == before
    assert stderr.startswith("garrison: "), stderr
    assert "Traceback" not in stderr
    # Compared without white space: the one-line test below covers how the message is laid out.
    assert squeezed(f"{LONG_NAME}: {MALFORMED[kind][1]}") in squeezed(stderr), stderr


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize("kind", ["effect", "expression"])
def test_malformed_rule_file_message_is_one_line(tmp_path: Path, kind: str) -> None:
    _, stderr, _ = apply_good_then_malformed(tmp_path, kind)
    assert stderr.endswith("\n"), stderr
    assert stderr.count("\n") == 1, f"not one line:\n{stderr}"


BLOCK_NC = """
rules:
  - name: block netcat
    scope: [{containers: ["enf-gone-*"]}]
    processes:
      denied: {effect: block, paths: [nc]}
"""

# A one-shot --rm container runs nc (a block) when told to, then ends: Docker removes it while
# the defender's block is under way. LINGER: how long it lives on after the refused nc.
ONE_SHOT = "while [ ! -e /tmp/go ]; do sleep 0.05; done; /usr/bin/nc -h; sleep {linger}"
LINGER = (0, 0, 0.02)


def one_shot_violation(defender: DefenderProcess, run_container, name: str, linger: float):
    script = ONE_SHOT.format(linger=linger)
    victim = run_container(DEBIAN, ["sh", "-c", script], name=name, auto_remove=True)
    watched(defender, victim)
    victim.exec_run(["touch", "/tmp/go"])
    wait_for(f"{name} to be gone", lambda: victim.id not in watching(defender))
    return victim


@pytest.mark.engine
def test_container_removed_between_verdict_and_block_crashes_nothing(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, BLOCK_NC)
    for i, linger in enumerate(LINGER):
        victim = one_shot_violation(defender, run_container, f"enf-gone-{i}", linger)
        wait_audits(defender, f"the block audit of {victim.name}", container=victim.id)
    assert defender.proc is not None
    assert defender.proc.poll() is None, "the defender exited"

    later = run_container(DEBIAN, ["sleep", "3600"], name="enf-gone-later")
    watched(defender, later)
    code, output = later.exec_run(["sh", "-c", "/usr/bin/nc -h"])
    assert code == 126, output
    assert EPERM in output.decode()
    wait_stopped(later, "blocked for running nc")
    wait_audits(defender, "the later block audit", container=later.id, effect="block")
    before = defender.status()["updatedAt"]
    wait_for("the status to move on", lambda: defender.status()["updatedAt"] > before)
    assert "Traceback" not in defender.log.read_text()


@pytest.mark.engine
def test_removed_containers_leave_no_blocked_record_nor_failure(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="1h")
    put_rules(defender, BLOCK_NC)
    kept = run_container(DEBIAN, ["sleep", "3600"], name="enf-gone-by-hand")
    watched(defender, kept)
    kept.exec_run(["/usr/bin/nc", "-h"])
    wait_for("the blocked record", lambda: kept.id in blocked_ids(defender))
    kept.remove(force=True)  # the user removes the blocked container
    one_shot = one_shot_violation(defender, run_container, "enf-gone-rm", 0)
    wait_audits(defender, "the one-shot's block audit", container=one_shot.id)
    settle(defender)

    stale = blocked_ids(defender) & {kept.id, one_shot.id}
    failures = defender.status()["enforcement"]["failures"]
    assert (stale, failures) == (set(), 0), "blocked records of removed containers; failures"


def blocked_ids(defender: DefenderProcess) -> set[str]:
    records = defender.console_call(lambda c: c.list_blocked())
    return {r.container_id for r in records}
