"""Helpers for the runtime tests: a listener that records what the tracker tells it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from garrison.runtime import ContainerInfo, ListenerBase

# How long a test waits for something the daemon is expected to do: a deadline to fail by,
# never a measure of speed.
PATIENCE = 60.0


class Recorder(ListenerBase):
    """Every call in order: ("start", info), ("stop", id), ("update", info), ("exec", (id, cmd))."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_start(self, info: ContainerInfo) -> None:
        self.calls.append(("start", info))

    def on_stop(self, container_id: str) -> None:
        self.calls.append(("stop", container_id))

    def on_update(self, info: ContainerInfo) -> None:
        self.calls.append(("update", info))

    def on_exec(self, container_id: str, command: str) -> None:
        self.calls.append(("exec", (container_id, command)))

    def starts(self, container_id: str) -> list[ContainerInfo]:
        return [
            i
            for k, i in self.calls
            if k == "start" and isinstance(i, ContainerInfo) and i.id == container_id
        ]

    def stops(self, container_id: str) -> int:
        return sum(1 for k, i in self.calls if k == "stop" and i == container_id)

    def updates(self, container_id: str) -> list[ContainerInfo]:
        return [
            i
            for k, i in self.calls
            if k == "update" and isinstance(i, ContainerInfo) and i.id == container_id
        ]

    def execs(self, container_id: str) -> list[str]:
        return [
            i[1]
            for k, i in self.calls
            if k == "exec" and isinstance(i, tuple) and i[0] == container_id
        ]


async def eventually(condition: Callable[[], object], what: str, timeout: float = PATIENCE) -> None:
    """Wait until ``condition()`` is true; fail saying ``what`` did not happen."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        await asyncio.sleep(0.02)
