"""ContainerTracker against the real private engine: adoption, lifecycle, execs, updates."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from garrison.runtime import ContainerTracker, DockerRuntime, RestartPolicy
from tests.runtime.runtime_helpers import Recorder, eventually

pytestmark = pytest.mark.engine
BUSYBOX = "garrison-test/busybox:latest"
Scenario = Callable[[ContainerTracker, Recorder], Awaitable[None]]


def follow(runtime: DockerRuntime, scenario: Scenario) -> Recorder:
    """Run ``scenario`` with a started tracker; the tracker is stopped even when it fails."""
    recorder = Recorder()

    async def main() -> None:
        tracker = ContainerTracker(runtime, [recorder])
        await tracker.start()
        try:
            await scenario(tracker, recorder)
        finally:
            await tracker.stop()

    asyncio.run(main())
    return recorder


def sleeper(run_container: Any, **kwargs: Any) -> Any:
    return run_container(BUSYBOX, ["sleep", "600"], **kwargs)


def test_container_started_before_the_tracker_is_adopted(docker_runtime, run_container):
    container = sleeper(run_container, name="rt-adopted")

    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        info = tracker.containers()[container.id]
        assert info.name == "rt-adopted"
        assert info.pid > 0
        assert rec.starts(container.id) == [info]

    follow(docker_runtime, scenario)


def test_new_container_start_and_stop_reach_listeners_with_pid_and_merged_dir(
    docker_runtime, run_container
):
    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        container = await asyncio.to_thread(sleeper, run_container)
        await eventually(lambda: rec.starts(container.id), "the start of the new container")
        info = rec.starts(container.id)[0]
        assert os.readlink(f"/proc/{info.pid}/exe").endswith("busybox")
        assert info.merged_dir is not None
        assert Path(info.merged_dir, "bin/busybox").exists()
        await asyncio.to_thread(container.stop, timeout=0)
        await eventually(lambda: rec.stops(container.id), "the stop of the container")
        assert container.id not in tracker.containers()

    follow(docker_runtime, scenario)


def test_docker_exec_reaches_on_exec_with_its_command(docker_runtime, run_container):
    container = sleeper(run_container)

    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        await asyncio.to_thread(container.exec_run, ["/bin/sh", "-c", "id"])
        await eventually(lambda: rec.execs(container.id), "the exec")
        assert rec.execs(container.id) == ["/bin/sh -c id"]

    follow(docker_runtime, scenario)


def test_restart_policy_change_and_rename_are_updates(docker_runtime, run_container):
    container = sleeper(run_container, name="rt-before")

    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        policy = RestartPolicy("on-failure", 2)
        await asyncio.to_thread(docker_runtime.set_restart_policy, container.id, policy)
        await eventually(lambda: rec.updates(container.id), "the update event")
        await asyncio.to_thread(container.rename, "rt-after")
        await eventually(lambda: tracker.containers()[container.id].name == "rt-after", "rename")
        assert tracker.containers()[container.id].restart_policy == policy
        assert rec.stops(container.id) == 0

    follow(docker_runtime, scenario)


def test_kill_through_the_runtime_is_seen_as_a_stop(docker_runtime, run_container):
    container = sleeper(run_container)

    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        await asyncio.to_thread(docker_runtime.kill, container.id)
        await eventually(lambda: rec.stops(container.id), "the stop after kill")
        assert not (await asyncio.to_thread(docker_runtime.inspect, container.id)).running

    follow(docker_runtime, scenario)


def test_kubernetes_container_is_tracked_as_kubernetes(docker_runtime, run_container):
    labels = {"io.kubernetes.pod.name": "api-0", "io.kubernetes.pod.namespace": "prod"}

    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        container = await asyncio.to_thread(sleeper, run_container, labels=labels)
        await eventually(lambda: rec.starts(container.id), "the start")
        info = tracker.containers()[container.id]
        assert (info.orchestrator, info.namespace) == ("kubernetes", "prod")

    follow(docker_runtime, scenario)


def test_force_removed_container_is_stopped_once(docker_runtime, run_container):
    container = sleeper(run_container)

    async def scenario(tracker: ContainerTracker, rec: Recorder) -> None:
        await asyncio.to_thread(container.remove, force=True)
        # Events are handled in order: once a later container's start is seen, the removed
        # one's kill, die and destroy have all been handled.
        marker = await asyncio.to_thread(sleeper, run_container)
        await eventually(lambda: rec.starts(marker.id), "the start of a later container")
        assert rec.stops(container.id) == 1

    follow(docker_runtime, scenario)
