"""An in-memory ContainerRuntime for unit tests of the parts that use one.

It keeps containers as ContainerInfo and emits the events Docker would for what a test
does to it (``run``, ``exit``, ``remove``, ``exec``), and can play a daemon that goes
away (``go_down``) and comes back (``come_up``). Tests of the whole use DockerRuntime.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from garrison.errors import ContainerGone, RuntimeRefused, RuntimeUnavailable
from garrison.runtime.base import ContainerInfo, RestartPolicy, RuntimeEvent
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout


class FakeEventStream:
    """Events pushed by FakeRuntime; ends with RuntimeUnavailable when the fake goes down."""

    _CLOSED = object()
    _LOST = object()

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue()
        self._done = False

    def push(self, event: RuntimeEvent) -> None:
        self._queue.put(event)

    def lose(self) -> None:
        self._queue.put(self._LOST)

    def close(self) -> None:
        self._queue.put(self._CLOSED)

    def __iter__(self) -> Iterator[RuntimeEvent]:
        return self

    def __next__(self) -> RuntimeEvent:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, RuntimeEvent):
            return item
        self._done = True
        if item is self._LOST:
            raise RuntimeUnavailable("the fake runtime went away")
        raise StopIteration


class FakeRuntime:
    """Containers in memory; every call is thread-safe and fast."""

    def __init__(self, cgroup_layout: CgroupLayout = DOCKER_LAYOUT) -> None:
        self._layout = cgroup_layout  # the runtime it plays: Docker's unless a test says
        self._lock = threading.Lock()
        self._containers: dict[str, ContainerInfo] = {}
        self._streams: list[FakeEventStream] = []
        self._pids = iter(range(10_000, 1_000_000))
        self.up = True
        self.vanish_on_inspect: set[str] = set()  # ids that look gone to the next inspect
        self.calls: list[tuple[str, str]] = []  # (method, container id), for assertions

    # --- what a test does -------------------------------------------------------------

    def run(
        self,
        container_id: str,
        name: str = "",
        image: str = "img:latest",
        labels: Mapping[str, str] | None = None,
        restart_policy: RestartPolicy | None = None,
    ) -> ContainerInfo:
        """Create and start a container; emits ``create`` and ``start``."""
        info = ContainerInfo(
            id=container_id,
            name=name or container_id[:12],
            image_name=image,
            image_id=f"sha256:{image}",
            running=True,
            pid=next(self._pids),
            merged_dir=f"/fake/overlay2/{container_id}/merged",
            labels=dict(labels or {}),
            restart_policy=restart_policy or RestartPolicy(),
        )
        with self._lock:
            self._containers[container_id] = info
        self.emit("create", container_id)
        self.emit("start", container_id)
        return info

    def exit(self, container_id: str) -> None:
        """The container's first process exits; emits ``die``."""
        self._set(container_id, running=False, pid=0)
        self.emit("die", container_id, {"exitCode": "0"})

    def remove(self, container_id: str) -> None:
        with self._lock:
            self._containers.pop(container_id, None)
        self.emit("destroy", container_id)

    def exec(self, container_id: str, command: str) -> None:
        for action in ("exec_create", "exec_start"):
            self.emit(action, container_id, {"command": command, "execID": "fake"})

    def go_down(self, restart_containers: bool = True) -> None:
        """The daemon stops: open streams end; containers that restart get new pids."""
        self.up = False
        with self._lock:
            streams, self._streams = self._streams, []
            if restart_containers:
                for cid, info in self._containers.items():
                    if info.running:
                        self._containers[cid] = dataclasses.replace(info, pid=next(self._pids))
        for stream in streams:
            stream.lose()

    def come_up(self) -> None:
        self.up = True

    def emit(
        self, action: str, container_id: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        event = RuntimeEvent(action, container_id, time.time(), dict(attributes or {}))
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.push(event)

    # --- the ContainerRuntime protocol ------------------------------------------------

    @property
    def cgroup_layout(self) -> CgroupLayout:
        return self._layout

    def ping(self) -> bool:
        return self.up

    def list_running(self) -> list[ContainerInfo]:
        self._check_up()
        with self._lock:
            return [info for info in self._containers.values() if info.running]

    def inspect(self, container_id: str) -> ContainerInfo:
        self._check_up()
        self.calls.append(("inspect", container_id))
        if container_id in self.vanish_on_inspect:
            self.vanish_on_inspect.discard(container_id)
            raise ContainerGone(container_id)
        with self._lock:
            if container_id not in self._containers:
                raise ContainerGone(container_id)
            return self._containers[container_id]

    def events(self, since: float | None = None) -> FakeEventStream:
        self._check_up()
        stream = FakeEventStream()
        with self._lock:
            self._streams.append(stream)
        return stream

    def kill(self, container_id: str) -> None:
        self.calls.append(("kill", container_id))
        self.inspect(container_id)
        self.emit("kill", container_id, {"signal": "9"})
        self.exit(container_id)

    def stop(self, container_id: str, timeout: int = 10) -> None:
        self.calls.append(("stop", container_id))
        self.inspect(container_id)
        self.exit(container_id)

    def start(self, container_id: str) -> None:
        self.calls.append(("start", container_id))
        self._set(container_id, running=True, pid=next(self._pids))
        self.emit("start", container_id)

    def set_restart_policy(self, container_id: str, policy: RestartPolicy) -> None:
        self.calls.append(("set_restart_policy", container_id))
        if self.inspect(container_id).labels.get("fake.auto-remove"):
            raise RuntimeRefused(
                "Docker refused: cannot change restart policy of an auto-remove container"
            )
        self._set(container_id, restart_policy=policy)
        self.emit("update", container_id)

    def inspect_document(self, container_id: str) -> dict[str, Any]:
        info = self.inspect(container_id)
        return {"Id": info.id, "Name": f"/{info.name}", "Config": {"Image": info.image_name}}

    def export(self, container_id: str) -> Iterator[bytes]:
        """An empty tar: the fake keeps no file systems."""
        self.inspect(container_id)
        yield bytes(1024)  # a tar's end: two zero blocks

    def diff(self, container_id: str) -> list[dict[str, Any]]:
        self.inspect(container_id)
        return []

    def logs(self, container_id: str, tail: int) -> bytes:
        self.inspect(container_id)
        return b""

    def close(self) -> None:
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.close()

    def _check_up(self) -> None:
        if not self.up:
            raise RuntimeUnavailable("the fake runtime is down")

    def _set(self, container_id: str, **changes: Any) -> None:
        self._check_up()
        with self._lock:
            if container_id not in self._containers:
                raise ContainerGone(container_id)
            new = dataclasses.replace(self._containers[container_id], **changes)
            self._containers[container_id] = new
