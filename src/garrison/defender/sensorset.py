"""The defender's sensors, started, fed containers and stopped together.

- exec (fanotify permission events): every exec in a container's root file system, judged;
- files (fanotify notifications): files written or created;
- processes (proc connector): the process tree, exits, and execs off the root file system;
- network (polling /proc/PID/net): listening sockets and outbound connections.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from garrison.defender.judge import Judge
from garrison.errors import GarrisonError, SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent, SensorCounters
from garrison.sensors.exec_sensor import ExecSensor
from garrison.sensors.file_sensor import FileSensor
from garrison.sensors.network import NetworkSensor
from garrison.sensors.proc_connector import ProcConnector
from garrison.sensors.process_tracker import ProcessTracker

log = logging.getLogger(__name__)

Event = ProcessEvent | FileEvent | NetEvent


class SensorSet:
    def __init__(
        self, judge: Judge, sink: Callable[[Event], None], network_interval: float = 1.0
    ) -> None:
        self.judge = judge
        self.exec = ExecSensor(judge, sink, admit=judge.admit)
        self.files = FileSensor(sink, judge=judge.file, may_deny=judge.may_deny)
        self.processes = ProcessTracker(sink, judge.already_seen, claim=judge.claim)
        self.connector = ProcConnector(self.processes)
        self.network = NetworkSensor(sink, network_interval)
        self.started: list[str] = []

    def start(self) -> None:
        """Start every sensor; one the kernel refuses is logged and left out, not fatal."""
        for name, start in (
            ("exec", self.exec.start),
            ("files", self.files.start),
            ("processes", self.connector.start),
            ("network", self.network.start),
        ):
            try:
                start()
            except SensorError as exc:
                log.error("sensor %s not started: %s", name, exc)
            else:
                self.started.append(name)

    def stop(self) -> None:
        for stop in (self.exec.stop, self.files.stop, self.connector.stop, self.network.stop):
            with contextlib.suppress(GarrisonError, OSError):
                stop()

    def watch(self, container: ContainerInfo, guard_writes: bool = False) -> None:
        """Follow a running container (``guard_writes``: judge its opens for writing too);
        a container that vanished meanwhile is skipped."""

        def files(info: ContainerInfo) -> None:
            self.files.watch(info, prevent=guard_writes)

        watchers: tuple[tuple[str, Callable[[ContainerInfo], None]], ...] = (
            ("exec", self.exec.watch),
            ("files", files),
            ("processes", self._watch_processes),
            ("network", self.network.watch),
        )
        for name, watch in watchers:
            try:
                watch(container)
            except (GarrisonError, OSError) as exc:
                log.warning("%s: cannot watch %s: %s", name, container.id[:12], exc)

    def _watch_processes(self, container: ContainerInfo) -> None:
        self.processes.watch(container.id, container.merged_dir)

    def guard_writes(self, container_id: str, guard: bool) -> None:
        try:
            self.files.set_prevent(container_id, guard)
        except (GarrisonError, OSError) as exc:
            log.warning("files: cannot guard %s: %s", container_id[:12], exc)

    def forget_ignores(self) -> None:
        """Rules or models changed: the kernel must ask about every file again."""
        self.judge.forget_always()
        for forget in (self.exec.forget_ignores, self.files.forget_ignores):
            try:
                forget()
            except (GarrisonError, OSError) as exc:
                log.error("ignore marks not dropped: %s", exc)

    def unwatch(self, container_id: str) -> None:
        for unwatch in (
            self.exec.unwatch,
            self.files.unwatch,
            self.processes.unwatch,
            self.network.unwatch,
        ):
            with contextlib.suppress(GarrisonError, OSError):
                unwatch(container_id)

    def counters(self) -> dict[str, dict[str, Any]]:
        """Per sensor: events, drops, late, errors (``garrison status``)."""
        merged = _merge(self.connector.counters, self.processes.counters)
        return {
            "exec": _counters(self.exec.counters, "exec" in self.started),
            "files": _counters(self.files.counters, "files" in self.started),
            "processes": _counters(merged, "processes" in self.started),
            "network": _counters(self.network.counters, "network" in self.started),
        }


def _merge(a: SensorCounters, b: SensorCounters) -> SensorCounters:
    return SensorCounters(
        events=a.events,
        drops=a.drops + b.drops,
        late=a.late + b.late,
        errors=a.errors + b.errors,
        extra={**a.extra, **b.extra, "recorded": b.events},
    )


def _counters(counters: SensorCounters, running: bool) -> dict[str, Any]:
    return {"running": running, **asdict(counters)}
