"""The enforcer against the real engine, with the interleavings an event loop allows forced:
a container removed while its block is being recorded leaves no record behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from garrison.audit.record import Audit
from garrison.console.inprocess import InProcessLink
from garrison.defender.enforce import Enforcer
from garrison.runtime import DockerRuntime
from garrison.store import BlockedContainer, MemoryStore

pytestmark = pytest.mark.engine
BUSYBOX = "garrison-test/busybox:latest"


class RemovedWhileWriting(InProcessLink):
    """The container's ``destroy`` event is handled while its record is being written."""

    enforcer: Enforcer

    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        stored = super().begin_block(record, audit)
        self.enforcer.forget(record.container_id)
        return stored


def block_audit(container_id: str) -> Audit:
    return Audit(time.time(), "host", "processes", "unexpectedProcess", "block", "nc ran",
                 containerId=container_id)  # fmt: skip


def test_a_container_removed_while_its_block_is_recorded_leaves_no_record(
    docker_runtime: DockerRuntime, run_container
) -> None:
    container = run_container(BUSYBOX, ["sleep", "600"], restart_policy={"Name": "always"})
    link = RemovedWhileWriting(MemoryStore())
    enforcer = Enforcer(docker_runtime, link)
    link.enforcer = enforcer
    try:
        asyncio.run(enforcer.block(docker_runtime.inspect(container.id), block_audit(container.id)))
    finally:
        link.close()
    assert link.list_blocked() == []
    assert container.id not in enforcer.blocked
    assert enforcer.blocks == 1
    container.reload()
    assert container.status == "exited"


def test_a_blocked_container_has_its_record(docker_runtime: DockerRuntime, run_container) -> None:
    container = run_container(BUSYBOX, ["sleep", "600"], restart_policy={"Name": "always"})
    link = InProcessLink(MemoryStore())
    enforcer = Enforcer(docker_runtime, link)
    try:
        asyncio.run(enforcer.block(docker_runtime.inspect(container.id), block_audit(container.id)))
        (record,) = link.list_blocked()
    finally:
        link.close()
    assert (record.container_id, record.restart_policy.name) == (container.id, "always")
    assert container.id in enforcer.blocked


class UnblockedAtConsole(InProcessLink):
    """A console of many hosts that ended the block: handed back once, as RemoteLink does."""

    ended: list[BlockedContainer]

    def unblocked_at_console(self) -> list[BlockedContainer]:
        ended, self.ended = self.ended, []
        for record in ended:
            self.remove_blocked(record.container_id)
        return ended


def test_a_block_ended_at_the_console_gets_its_restart_policy_back(
    docker_runtime: DockerRuntime, run_container
) -> None:
    container = run_container(BUSYBOX, ["sleep", "600"], restart_policy={"Name": "always"})
    link = UnblockedAtConsole(MemoryStore())
    link.ended = []
    enforcer = Enforcer(docker_runtime, link)
    try:
        asyncio.run(enforcer.block(docker_runtime.inspect(container.id), block_audit(container.id)))
        container.reload()
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] != "always"
        link.ended = link.list_blocked()
        enforcer.restore_unblocked()
        enforcer.refresh()
    finally:
        link.close()
    container.reload()
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert container.id not in enforcer.blocked
