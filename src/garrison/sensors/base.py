"""What the defender asks of every sensor: the one protocol a sensor implements.

A sensor is started and stopped with the defender, follows the containers it is given
(``watch``) until told to let go (``unwatch``), sends what it sees to the sink it was made
with, and reports its health (``status``: ``garrison status``). Registering it is one line in
``garrison/defender/sensorset.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import SensorCounters


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """A container to follow, with what its policy asks of the sensors."""

    container: ContainerInfo
    guard_writes: bool = False  # refuse writes as its policy says
    learning: bool = False  # its model learns: record what the kernel may skip
    readonly: frozenset[str] | None = None  # paths whose read-only mounts refuse it all
    rootfs_judged: bool = False  # the exec sensor judges its root file system's execs


class Sensor(Protocol):
    """One sensor of the defender. Every method may raise GarrisonError or OSError: the
    sensor set logs it and carries on with the other sensors."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def watch(self, request: WatchRequest) -> None: ...

    def unwatch(self, container_id: str) -> None: ...

    def status(self) -> dict[str, Any]:
        """Counters (events, drops, late, errors, extra) and what else ``garrison status``
        shows of this sensor."""
        ...


def counters_status(counters: SensorCounters) -> dict[str, Any]:
    return asdict(counters)
