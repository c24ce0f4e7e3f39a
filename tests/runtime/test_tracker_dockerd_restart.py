"""The tracker survives a dockerd restart: a private engine of this module's own is restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from garrison.devengine import BUSYBOX, EngineConfig, PrivateEngine, ensure_packages
from garrison.devengine.images import cache_dir_from_env, ensure_image
from garrison.errors import RuntimeUnavailable
from garrison.runtime import ContainerTracker, DockerRuntime
from tests.runtime.runtime_helpers import Recorder, eventually

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def own_engine() -> Iterator[PrivateEngine]:
    """An engine only this module uses (restarting the shared one would break other tests).

    The state dir is short: unix socket paths must stay under 108 bytes. Containers are
    stopped within 1 s when dockerd shuts down, so restarts are quick.
    """
    ensure_packages()
    state_dir = Path(tempfile.mkdtemp(prefix="rt-", dir="/var/tmp"))
    config = EngineConfig(state_dir=state_dir, extra_args=("--shutdown-timeout=1",))
    engine = PrivateEngine(config)
    try:
        engine.start()
        with contextlib.closing(engine.client()) as client:
            ensure_image(client, BUSYBOX, cache_dir_from_env())
        yield engine
    finally:
        engine.stop()
        _remove_state(state_dir)


def _remove_state(state_dir: Path) -> None:
    """Delete the engine's files, unless something is still mounted under them."""
    mounts = Path("/proc/self/mountinfo").read_text()
    if str(state_dir) in mounts:
        pytest.fail(f"mounts left under {state_dir} after the engine stopped")
    shutil.rmtree(state_dir)


@pytest.fixture
def own_client(own_engine: PrivateEngine) -> Iterator[docker.DockerClient]:
    """A client whose containers are all removed at the end of the test."""
    client = own_engine.client()
    try:
        yield client
    finally:
        for container in client.containers.list(all=True):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()


def test_event_stream_raises_runtime_unavailable_when_dockerd_stops(own_engine, own_client):
    runtime = DockerRuntime(own_engine.base_url)
    stream = runtime.events()
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in stream:
                pass
        except BaseException as exc:  # what ended the stream, checked below
            errors.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        own_engine.restart()
        reader.join(timeout=60)
        assert not reader.is_alive()
        assert len(errors) == 1
        assert isinstance(errors[0], RuntimeUnavailable)
    finally:
        stream.close()
        runtime.close()


def test_tracker_reconnects_and_keeps_tracking_a_restarted_container(own_engine, own_client):
    container = own_client.containers.run(
        BUSYBOX.name, ["sleep", "600"], detach=True, restart_policy={"Name": "always"}
    )
    runtime = DockerRuntime(own_engine.base_url)
    recorder = Recorder()

    async def main() -> None:
        tracker = ContainerTracker(runtime, [recorder])
        await tracker.start()
        try:
            await survive_restart(own_engine, own_client, tracker, recorder, container.id)
        finally:
            await tracker.stop()

    try:
        asyncio.run(main())
    finally:
        runtime.close()


async def survive_restart(
    engine: PrivateEngine,
    client: docker.DockerClient,
    tracker: ContainerTracker,
    rec: Recorder,
    cid: str,
) -> None:
    """Restart dockerd under the tracker; the container (restart policy always) comes back."""
    first_pid = tracker.containers()[cid].pid
    await asyncio.to_thread(engine.restart)
    await eventually(
        lambda: any(info.pid != first_pid for info in rec.starts(cid)),
        "the restarted container's new start",
    )
    await tracker.wait_synced()
    assert tracker.stats.reconnects >= 1
    assert rec.stops(cid) >= 1
    new_pid = tracker.containers()[cid].pid
    assert new_pid != first_pid
    assert os.readlink(f"/proc/{new_pid}/exe").endswith("busybox")
    # and it still follows events after the reconnect
    later = await asyncio.to_thread(
        client.containers.run, BUSYBOX.name, ["sleep", "600"], detach=True
    )
    await eventually(lambda: rec.starts(later.id), "the start of a container after restart")
