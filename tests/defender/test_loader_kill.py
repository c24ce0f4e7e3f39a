"""A program run through the dynamic loader by hand, once the model is active and unknown
programs are refused: the kernel kills the loader at its exec unless the file it names is one
the model learned — so the file never runs one instruction (its first act, writing a marker,
never happens), however the loader's options try to hide it. The audit names the file.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest

from garrison.audit.record import Audit
from tests.defender.conftest import BOTH_RUNTIMES, DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    active_model,
    audits,
    put_rules,
    state,
    watched,
)
from tests.support import exec_ok, wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

LOADER = "/lib64/ld-linux-x86-64.so.2"
MARKER = "/tmp/ldr-ran"
REFUSE_UNKNOWN = """
rules:
  - name: unknown programs refused
    scope: [{containers: ["ldr-*"]}]
    processes:
      effect: prevent
"""
# What the container runs while its model learns: bash, cp and rm, and /usr/bin/true through
# the loader (learned as /usr/bin/true).
LEARNED = f"cp /bin/sh /tmp/learned; rm /tmp/learned; {LOADER} /usr/bin/true; test -e {MARKER}"
# The loader told to run a copy of sh, which writes the marker as its very first act; the
# options in front of it are the loader's own (glibc's rtld and musl's ldso read them so).
DISGUISES = {
    "plain": "",
    "argv0 names a learned file": "--argv0 /usr/bin/true",
    "library path names a learned file": "--library-path /usr/bin/true",
    "options without values": "--inhibit-cache",
    "end of options": "--",
}


def bash(container, script: str) -> tuple[int, str]:
    code, output = container.exec_run(["/bin/bash", "-c", script])
    return code, bytes(output).decode(errors="replace")


def marker(container) -> bool:
    return bash(container, f"test -e {MARKER}")[0] == 0


@pytest.fixture
def learned(start_defender: Start, run_container):
    """A defender and a Debian container whose model learned LEARNED and is active, under a
    rule that refuses programs the model does not know."""
    defender = start_defender(learning="3s")
    put_rules(defender, REFUSE_UNKNOWN)
    name = f"ldr-box-{secrets.token_hex(4)}"
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name=name))
    exec_ok(deb, ["/bin/bash", "-c", f"{LEARNED}; true"])
    active_model(defender, DEBIAN)
    wait_for("the kernel to be told what the loader may load", lambda: armed(defender, deb))
    wait_for("the status to count the container armed", lambda: loader_armed(defender) == 1)
    return defender, deb


def loader_armed(defender: DefenderProcess) -> int:
    return int(defender.status()["sensors"]["processes"]["extra"].get("loader_armed", 0))


def armed(defender: DefenderProcess, container) -> bool:
    """A learned file through the loader runs (0); a copy of sh is killed (137, SIGKILL)."""
    probe = f"cp /bin/sh /tmp/probe; {LOADER} /tmp/probe -c true"
    return bash(container, f"{LOADER} /usr/bin/true")[0] == 0 and bash(container, probe)[0] == 137


def killed_copy(container, options: str) -> bool:
    script = f"cp /bin/sh /tmp/payload; {LOADER} {options} /tmp/payload -c 'touch {MARKER}'"
    return bash(container, script)[0] == 137


@pytest.mark.parametrize("options", DISGUISES.values(), ids=DISGUISES.keys())
def test_a_loader_run_of_an_unknown_file_is_killed_before_its_first_instruction(
    learned: tuple[DefenderProcess, object], options: str
) -> None:
    defender, deb = learned
    assert killed_copy(deb, options)
    assert not marker(deb), "the file the loader was told to run ran"
    assert state(deb)["Running"]
    audit = wait_for(
        "the killed loader run's audit", lambda: of_file(defender, deb, "/tmp/payload")
    )[0]
    assert (audit.attackType, audit.effect) == ("unexpectedProcess", "prevent"), audit
    assert f"(run through the loader {LOADER})" in audit.msg
    assert "seen after it started" not in audit.msg, "killed at its exec, not after"


def of_file(defender: DefenderProcess, container, path: str) -> list[Audit]:
    return [a for a in audits(defender, container=container.id) if a.processPath == path]


@BOTH_RUNTIMES
def test_a_learned_file_runs_through_the_loader_and_nothing_is_audited(
    learned: tuple[DefenderProcess, object],
) -> None:
    defender, deb = learned
    before = {a.msg for a in audits(defender, container=deb.id)}
    assert bash(deb, f"{LOADER} /usr/bin/true && {LOADER} --inhibit-cache /usr/bin/true")[0] == 0
    assert bash(deb, f"{LOADER} --list /tmp/probe >/dev/null")[0] == 0, "--list runs nothing"
    after = [a for a in audits(defender, container=deb.id) if a.msg not in before]
    assert not [a for a in after if a.processPath == "/usr/bin/true"], after


@BOTH_RUNTIMES
def test_a_relative_name_is_killed_and_the_audit_says_what_was_asked(
    learned: tuple[DefenderProcess, object],
) -> None:
    """The kernel cannot resolve ./true against the working directory: it kills. The
    defender names the file as it was given when the killed process's working directory is
    gone by the time it looks (as a rule), else resolved — /usr/bin/true, learned — with
    what the kernel did."""
    defender, deb = learned
    assert bash(deb, f"cd /usr/bin && {LOADER} ./true")[0] == 137

    def killed() -> list[Audit]:
        return of_file(defender, deb, "./true") + of_file(defender, deb, "/usr/bin/true")

    audit = wait_for("the audit of the relative loader run", killed)[0]
    assert audit.effect == "prevent", audit
    if audit.processPath == "./true":
        assert f"not found in the runtime model (run through the loader {LOADER})" in audit.msg
    else:
        assert f"through the loader {LOADER} under a name not among" in audit.msg, audit.msg
        assert audit.msg.endswith("killed at its exec"), audit.msg
    assert state(deb)["Running"]
