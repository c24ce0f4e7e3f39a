"""The defender's sensors, started, fed containers and stopped together.

- exec (fanotify permission events): every exec in a container's root file system, judged;
- files (fanotify notifications): files written or created; writes refused, by read-only
  mounts (reported by BPF) or open-permission events;
- processes (BPF tracepoints filtered in the kernel, or else the proc connector): execs off the
  root file system, exits, the process tree;
- network (polling /proc/PID/net): listening sockets and outbound connections.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from garrison.config import ProcessEventSource, WritePrevention
from garrison.defender.judge import Judge
from garrison.errors import GarrisonError, SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors.bpf.proc_events import BpfProcEvents
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
        self,
        judge: Judge,
        sink: Callable[[Event], None],
        network_interval: float = 1.0,
        process_events: ProcessEventSource = "auto",
        write_prevention: WritePrevention = "auto",
    ) -> None:
        self.judge = judge
        self.exec = ExecSensor(judge, sink, admit=judge.admit)
        self.files = FileSensor(
            sink, judge=judge.file, may_deny=judge.may_deny, write_prevention=write_prevention
        )
        self.processes = ProcessTracker(sink, judge.already_seen, claim=judge.claim)
        self.process_events = process_events
        self.connector: BpfProcEvents | ProcConnector = ProcConnector(self.processes)
        # Why the processes sensor runs on the proc connector, when it does (garrison status).
        self.source_reason: str | None = None
        self.network = NetworkSensor(sink, network_interval)
        self.started: list[str] = []
        # sensor → {container id: why that sensor does not watch it} (garrison status). Each
        # change publishes new dicts: the status thread reads them without a lock.
        self.unwatched: dict[str, dict[str, str]] = {}
        judge.records_skipped = self.records_skipped

    def start(self) -> None:
        """Start every sensor; one the kernel refuses is logged and left out, not fatal."""
        for name, start in (
            ("exec", self.exec.start),
            ("files", self.files.start),
            ("processes", self._start_processes),
            ("network", self.network.start),
        ):
            try:
                start()
            except SensorError as exc:
                log.error("sensor %s not started: %s", name, exc)
            else:
                self.started.append(name)

    def _start_processes(self) -> None:
        """BPF first (unless told otherwise); the proc connector when BPF cannot load."""
        if self.process_events != "proc_connector":
            bpf = BpfProcEvents(self.processes)
            bpf.add_tcp_listener(self.network.on_tcp)
            barrier = self.files.barrier
            if barrier is not None:
                bpf.add_refusal_listener(barrier.on_refused)
            try:
                self.connector = bpf.start()
                if barrier is not None:
                    barrier.refusals = bpf.refusals
            except SensorError as exc:
                self.source_reason = f"BPF unavailable: {exc}"
                if self.process_events == "bpf":
                    raise
                log.warning(
                    "processes: BPF tracepoints unavailable (%s); using the proc connector: "
                    "the process tree costs a wake-up per fork, exec and exit of the host, "
                    "and TCP sockets are polled",
                    exc,
                )
            else:
                return
        else:
            self.source_reason = "chosen (process_events: proc_connector)"
        self.connector = ProcConnector(self.processes).start()

    def stop(self) -> None:
        for stop in (self.exec.stop, self.files.stop, self.connector.stop, self.network.stop):
            with contextlib.suppress(GarrisonError, OSError):
                stop()

    def watch(
        self,
        container: ContainerInfo,
        guard_writes: bool = False,
        learning: bool = False,
        readonly: frozenset[str] | None = None,
    ) -> None:
        """Follow a running container (``guard_writes``: refuse writes as its policy says,
        ``readonly`` naming the paths whose read-only mounts would do it all, if so;
        ``learning``: its model learns, see :meth:`set_learning`); a container that vanished
        meanwhile is skipped."""

        def files(info: ContainerInfo) -> None:
            self.files.watch(info, prevent=guard_writes, readonly=readonly)

        covered: list[str] = []  # the root file system, when the exec sensor marks it

        def execs(info: ContainerInfo) -> None:
            self.exec.watch(info)
            if "exec" in self.started and info.merged_dir:
                covered.append(info.merged_dir)

        def processes(info: ContainerInfo) -> None:
            self.processes.watch(info.id, info.merged_dir)
            if isinstance(self.connector, BpfProcEvents) and self.connector.running:
                self.connector.watch(info.id, covered[0] if covered else None, learning)
                if self.connector.tcp_events:
                    self.network.tcp_events(info.id)

        watchers: tuple[tuple[str, Callable[[ContainerInfo], None]], ...] = (
            ("exec", execs),
            ("files", files),
            ("processes", processes),
            ("network", self.network.watch),
        )
        for name, watch in watchers:
            try:
                watch(container)
            except (GarrisonError, OSError) as exc:
                log.warning("%s: cannot watch %s: %s", name, container.id[:12], exc)
                why = str(exc).removeprefix(f"container {container.id[:12]}: ")
                self._note_unwatched(name, container.id, why)
            else:
                self._note_unwatched(name, container.id, None)

    def _note_unwatched(self, sensor: str, container_id: str, why: str | None) -> None:
        """Record (``why``) or clear (None) that ``sensor`` does not watch the container."""
        known = self.unwatched.get(sensor, {})
        if why is None and container_id not in known:
            return
        known = {cid: text for cid, text in known.items() if cid != container_id}
        if why is not None:
            known[container_id] = why
        self.unwatched = {**self.unwatched, sensor: known}

    def set_learning(self, container_id: str, learning: bool) -> None:
        """While a container's model learns, the BPF process events record every exec of its
        root file system, so that the exec sensor may let the kernel skip files it judged."""
        if isinstance(self.connector, BpfProcEvents) and self.connector.running:
            try:
                self.connector.record(container_id, learning)
            except (GarrisonError, OSError) as exc:
                log.warning("processes: cannot record %s: %s", container_id[:12], exc)

    def records_skipped(self, container_id: str) -> bool:
        """Are the execs the kernel skips in this container recorded all the same?"""
        return isinstance(self.connector, BpfProcEvents) and self.connector.recording(container_id)

    def guard_writes(
        self, container_id: str, guard: bool, readonly: frozenset[str] | None = None
    ) -> None:
        try:
            self.files.set_prevent(container_id, guard, readonly)
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
            self._unwatch_process_events,
            self.network.unwatch,
        ):
            with contextlib.suppress(GarrisonError, OSError):
                unwatch(container_id)
        for sensor in list(self.unwatched):
            self._note_unwatched(sensor, container_id, None)

    def _unwatch_process_events(self, container_id: str) -> None:
        if isinstance(self.connector, BpfProcEvents):
            self.connector.unwatch(container_id)

    def counters(self) -> dict[str, dict[str, Any]]:
        """Per sensor: events, drops, late, errors, and the containers it does not watch
        (``unwatched``: id → why) (``garrison status``)."""
        merged = _merge(self.connector.counters, self.processes.counters)
        table: dict[str, dict[str, Any]] = {
            "exec": _counters(self.exec.counters, "exec" in self.started),
            "files": _counters(self.files.counters, "files" in self.started),
            "processes": {
                **_counters(merged, "processes" in self.started),
                "source": "bpf" if isinstance(self.connector, BpfProcEvents) else "proc_connector",
                "reason": self.source_reason,
            },
            "network": _counters(self.network.counters, "network" in self.started),
        }
        unwatched = self.unwatched  # one published version for every sensor
        for name, entry in table.items():
            entry["unwatched"] = dict(unwatched.get(name, {}))
        return table


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
