"""Block against the real engine: an unknown process after learning stops the container, which
stays stopped across a dockerd restart and when started again, until ``garrison containers
unblock`` restores its restart policy. Under Kubernetes the restart policy is left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from garrison.runtime import ContainerRuntime
from tests.defender.conftest import BOTH_RUNTIMES, DefenderProcess
from tests.defender.enforcement_support import (
    BLOCKED_RESTART,
    BUSYBOX,
    DEBIAN,
    Container,
    active_model,
    audits,
    garrison,
    put_rules,
    restart_policy,
    settle,
    state,
    wait_audits,
    wait_stopped,
    watched,
)
from tests.support import wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

BLOCK_UNKNOWN = """
rules:
  - name: block the unknown
    scope: [{containers: ["enf-block-*"]}]
    processes: {effect: block}
"""

K8S_LABELS = {
    "io.kubernetes.pod.name": "web-0",
    "io.kubernetes.pod.namespace": "default",
    "io.kubernetes.container.name": "web",
}


def blocked_json(defender: DefenderProcess) -> list[dict[str, Any]]:
    shown = garrison("containers", "blocked", "--json", "--data-dir", str(defender.data_dir))
    assert shown.returncode == 0, shown.stderr
    rows: list[dict[str, Any]] = json.loads(shown.stdout)
    return rows


def block_after_learning(
    defender: DefenderProcess, run_container, name: str, **kwargs: Any
) -> Container:
    """A Debian container learned, then made to run nc, which its model does not know."""
    put_rules(defender, BLOCK_UNKNOWN)
    deb = run_container(DEBIAN, ["sleep", "3600"], name=name, **kwargs)
    watched(defender, deb)
    active_model(defender, DEBIAN)
    deb.exec_run(["/usr/bin/nc", "-h"])
    wait_stopped(deb, "blocked for running nc")
    return deb


def blocked_record(defender: DefenderProcess, deb: Container) -> dict[str, Any]:
    def mine() -> list[dict[str, Any]]:
        return [r for r in blocked_json(defender) if r["containerId"] == deb.id]

    rows = wait_for(f"the blocked record of {deb.name}", mine)
    assert len(rows) == 1, rows
    return rows[0]


def test_blocked_container_keeps_stopped_across_dockerd_restart_until_unblocked(
    start_defender: Start, run_container, engine
) -> None:
    defender = start_defender(learning="3s")
    control = run_container(
        BUSYBOX, ["sleep", "3600"], name="enf-control", restart_policy={"Name": "always"}
    )
    deb = block_after_learning(
        defender, run_container, "enf-block-docker", restart_policy={"Name": "always"}
    )
    record = blocked_record(defender, deb)  # stored after the restart policy was changed
    assert restart_policy(deb) == "unless-stopped"
    assert record["containerName"] == "enf-block-docker"
    assert record["restartPolicy"] == {"name": "always", "maximumRetryCount": 0}
    audit = record["audit"]
    assert audit["effect"] == "block"
    assert audit["processPath"] == "/usr/bin/nc"
    assert audit["attackType"] == "unexpectedProcess"
    assert audit["ruleName"] == "block the unknown"

    stopped_at, control_started = state(deb)["StartedAt"], state(control)["StartedAt"]
    engine.restart()
    # The control proves dockerd has restarted its `always` containers by now.
    wait_for(
        "dockerd to restart the control container",
        lambda: (s := state(control))["Running"] and s["StartedAt"] != control_started,
    )
    assert not state(deb)["Running"]
    assert state(deb)["StartedAt"] == stopped_at, "dockerd started the blocked container"
    assert restart_policy(deb) == "unless-stopped"

    unblocked = garrison(
        "containers", "unblock", "enf-block-docker",
        "--docker-host", engine.base_url, "--data-dir", str(defender.data_dir),
    )  # fmt: skip
    assert unblocked.returncode == 0, unblocked.stderr
    assert "restart policy 'always' restored" in unblocked.stdout
    assert restart_policy(deb) == "always"
    assert blocked_json(defender) == []


@BOTH_RUNTIMES
def test_kubernetes_container_is_stopped_with_its_restart_policy_untouched(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="3s")
    pod = block_after_learning(
        defender, run_container, "enf-block-k8s",
        labels=K8S_LABELS, restart_policy={"Name": "always"},
    )  # fmt: skip
    blocks = wait_audits(defender, "the block audit", container=pod.id, effect="block")
    assert blocks[0].processPath == "/usr/bin/nc"
    assert restart_policy(pod) == "always"


@BOTH_RUNTIMES
def test_blocked_container_started_again_is_stopped_again_and_audited(
    start_defender: Start, run_container
) -> None:
    defender = start_defender(learning="3s")
    deb = block_after_learning(
        defender, run_container, "enf-block-again", restart_policy={"Name": "always"}
    )
    blocked_record(defender, deb)
    settle(defender)  # the defender knows the container is blocked

    deb.start()

    def restarted() -> list[Any]:
        found = audits(defender, container=deb.id, effect="block")
        return [a for a in found if a.attackType == BLOCKED_RESTART]

    again = wait_for("the audit of the blocked container's restart", restarted)
    assert "enf-block-again" in again[0].msg
    wait_stopped(deb, "started again while blocked")
    assert restart_policy(deb) == "unless-stopped"
    assert blocked_record(defender, deb)["restartPolicy"]["name"] == "always"


def unblock_and_start(runtime: ContainerRuntime, defender: DefenderProcess, deb: Container) -> None:
    """What `garrison containers unblock` does, then `docker start`: in this process, so that
    nothing (an interpreter starting) stands between the two, as when a script runs both."""
    defender.console_call(lambda c: c.unblock(runtime, deb.id))
    deb.start()


# The defender's view of what is blocked may lag the store by up to a second; a start that
# falls in that window shows the fault. Three tries make missing it unlikely.
TRIES = 3


@BOTH_RUNTIMES
def test_unblocked_container_started_at_once_runs_on(
    start_defender: Start, run_container, defended_runtime: ContainerRuntime
) -> None:
    defender = start_defender(learning="3s")
    deb = block_after_learning(
        defender, run_container, "enf-block-then-free", restart_policy={"Name": "always"}
    )
    for attempt in range(TRIES):
        if attempt:
            deb.exec_run(["/usr/bin/nc", "-h"])
            wait_stopped(deb, "blocked again for running nc")
        blocked_record(defender, deb)
        unblock_and_start(defended_runtime, defender, deb)
        settle(defender)
        assert state(deb)["Running"], f"stopped again after it was unblocked (try {attempt + 1})"
        assert restart_policy(deb) == "always"
    restarts = [a for a in audits(defender, container=deb.id) if a.attackType == BLOCKED_RESTART]
    assert restarts == []
