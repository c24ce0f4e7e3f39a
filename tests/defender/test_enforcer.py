"""The enforcer against the real engine, with the interleavings an event loop allows forced:
a container removed while its block is being recorded leaves no record behind."""

from __future__ import annotations

import asyncio
import time

import pytest

from garrison.audit.record import Audit
from garrison.console.inprocess import InProcessLink
from garrison.defender.enforce import Enforcer
from garrison.errors import KubernetesUnreachable
from garrison.k8s.pods import FakePods, PodRef
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


POD_LABELS = {
    "io.kubernetes.pod.name": "web-0",
    "io.kubernetes.pod.namespace": "shop",
    "io.kubernetes.pod.uid": "6f1c2d1e-0000-4000-8000-000000000001",
    "io.kubernetes.container.name": "web",
}


def block_with_pods(
    runtime: DockerRuntime, container_id: str, pods: FakePods
) -> tuple[Enforcer, list[BlockedContainer]]:
    link = InProcessLink(MemoryStore())
    enforcer = Enforcer(runtime, link, pods=pods)
    try:
        asyncio.run(enforcer.block(runtime.inspect(container_id), block_audit(container_id)))
        return enforcer, link.list_blocked()
    finally:
        link.close()


def test_with_block_deletes_pod_a_blocked_pods_container_is_stopped_then_its_pod_deleted(
    docker_runtime: DockerRuntime, run_container
) -> None:
    container = run_container(BUSYBOX, ["sleep", "600"], labels=POD_LABELS,
                              restart_policy={"Name": "always"})  # fmt: skip
    pods = FakePods()
    enforcer, records = block_with_pods(docker_runtime, container.id, pods)
    assert pods.deleted == [PodRef("shop", "web-0", POD_LABELS["io.kubernetes.pod.uid"])]
    assert enforcer.pod_deletions == {"deleted": 1}
    container.reload()
    assert container.status == "exited"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"  # orchestrated
    assert [r.state for r in records] == ["done"]


def test_a_pod_that_cannot_be_deleted_leaves_the_block_whole(
    docker_runtime: DockerRuntime, run_container
) -> None:
    container = run_container(BUSYBOX, ["sleep", "600"], labels=POD_LABELS)
    pods = FakePods(error=KubernetesUnreachable("the API server at 127.0.0.1:6443: timed out"))
    enforcer, records = block_with_pods(docker_runtime, container.id, pods)
    assert enforcer.pod_deletions == {"failed": 1}
    assert enforcer.blocks == 1
    container.reload()
    assert container.status == "exited"
    assert [r.state for r in records] == ["done"]


def test_a_container_outside_any_pod_deletes_no_pod(
    docker_runtime: DockerRuntime, run_container
) -> None:
    container = run_container(BUSYBOX, ["sleep", "600"])
    pods = FakePods()
    enforcer, _ = block_with_pods(docker_runtime, container.id, pods)
    assert pods.deleted == []
    assert enforcer.pod_deletions == {}
