"""Blocks that survive faults, against the real engine: a defender killed at any step of a
block has it finished by the next one (the intent, audit and original restart policy were
stored before the kill), and a kill that Docker refuses leaves the block listed as pending
with the reason — never as done — until Docker accepts it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.devengine import EngineConfig, PrivateEngine, ensure_all
from garrison.devengine.images import cache_dir_from_env
from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    Container,
    deny_nc,
    garrison,
    put_rules,
    restart_policy,
    state,
    wait_stopped,
    watched,
)
from tests.defender.refusing_plugin import RefusingPlugin
from tests.support import wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]

BLOCK_NC = deny_nc("crash-*", effect="block")


def records(defender: DefenderProcess) -> list[dict[str, Any]]:
    shown = garrison("containers", "blocked", "--json", "--data-dir", str(defender.data_dir))
    assert shown.returncode == 0, shown.stderr
    found: list[dict[str, Any]] = json.loads(shown.stdout)
    return found


def record_of(
    defender: DefenderProcess, container: Container, state: str, reason: str = ""
) -> dict[str, Any]:
    """The container's block record once it is in ``state`` and its reason holds ``reason``
    (a pending record says "stopping" from before the kill until an attempt fails)."""

    def probe() -> dict[str, Any] | None:
        mine = [r for r in records(defender) if r["containerId"] == container.id]
        if mine and mine[0]["state"] == state and reason in mine[0]["reason"]:
            return mine[0]
        return None

    found: dict[str, Any] = wait_for(f"a {state} block record of {container.name}", probe)
    return found


def unblock(defender: DefenderProcess, container: Container) -> None:
    done = garrison(
        "containers", "unblock", container.name,
        "--docker-host", defender.engine.base_url, "--data-dir", str(defender.data_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert restart_policy(container) == "always"


@pytest.mark.parametrize("step", ["audit", "kill", "update"])
def test_a_defender_killed_mid_block_has_the_block_finished_by_the_next(
    start_defender: Start, run_container, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    monkeypatch.setenv("GARRISON_TEST_HOOKS", "1")
    monkeypatch.setenv("GARRISON_TEST_CRASH_AT", step)  # the first defender only
    defender = start_defender(learning="1h")
    put_rules(defender, BLOCK_NC)
    deb = run_container(
        DEBIAN, ["sleep", "3600"], name=f"crash-{step}", restart_policy={"Name": "always"}
    )
    watched(defender, deb)
    first = defender.status()["pid"]
    deb.exec_run(["/usr/bin/nc", "-h"])

    wait_for("a new defender", lambda: defender.status().get("pid") not in (None, first))
    assert not os.path.exists(f"/proc/{first}")
    record = record_of(defender, deb, "done")
    wait_stopped(deb, "blocked")
    assert restart_policy(deb) == "unless-stopped"
    assert record["restartPolicy"] == {"name": "always", "maximumRetryCount": 0}
    assert record["audit"]["effect"] == "block"
    assert record["audit"]["processPath"] == "/usr/bin/nc"
    watchdog = defender.status()["watchdog"]
    assert (watchdog["crashes"], watchdog["last"]["pid"]) == (1, first)
    unblock(defender, deb)


@pytest.fixture
def refusing_engine() -> Iterator[tuple[PrivateEngine, RefusingPlugin]]:
    """A private engine whose authorization plugin refuses kills when told to."""
    workdir = Path(tempfile.mkdtemp(prefix="gr-", dir="/tmp"))  # short: unix socket paths
    name = f"garrison-refuse-test-{os.getpid()}"
    plugin = RefusingPlugin(name, workdir / "authz.sock").start()
    engine = PrivateEngine(
        EngineConfig(state_dir=workdir / "e", extra_args=(f"--authorization-plugin={name}",))
    )
    try:
        engine.start()
        client = engine.client()
        try:
            ensure_all(client, cache_dir_from_env())
        finally:
            client.close()
        yield engine, plugin
    finally:
        engine.stop()  # before the plugin: dockerd refuses every call while it is down
        plugin.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_a_kill_docker_refuses_is_pending_with_the_reason_until_docker_accepts(
    refusing_engine: tuple[PrivateEngine, RefusingPlugin], tmp_path: Path
) -> None:
    engine, plugin = refusing_engine
    defender = DefenderProcess(engine, tmp_path / "data", "1h").start()
    client = engine.client()
    try:
        put_rules(defender, BLOCK_NC)
        deb = client.containers.run(
            DEBIAN, ["sleep", "3600"], name="crash-refused", detach=True,
            restart_policy={"Name": "always"},
        )  # fmt: skip
        watched(defender, deb)
        plugin.refuse_kills.set()
        deb.exec_run(["/usr/bin/nc", "-h"])

        pending = record_of(defender, deb, "pending", reason="kills are refused here")
        assert pending["reason"].startswith("Docker: ")
        assert pending["audit"]["effect"] == "block"
        assert state(deb)["Running"]
        wait_for(  # the status is a periodic report: it may still predate the record
            "the status to count the pending block",
            lambda: defender.status()["enforcement"]["pending"] == 1,
        )
        wait_for("Docker to refuse a second attempt", lambda: plugin.refused >= 2)

        plugin.refuse_kills.clear()
        wait_stopped(deb, "blocked once Docker accepts the kill")
        record = record_of(defender, deb, "done")
        assert record["reason"] == ""
        assert restart_policy(deb) == "unless-stopped"
    finally:
        plugin.refuse_kills.clear()
        defender.stop()
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
