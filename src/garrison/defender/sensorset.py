"""The defender's sensors, started, fed containers and stopped together.

- exec (fanotify permission events): every exec in a container's root file system and its
  other mounts, judged;
- files (fanotify notifications): files written or created; writes refused, by read-only
  mounts (reported by BPF) or open-permission events;
- processes (BPF tracepoints filtered in the kernel, or else the proc connector): what the
  exec sensor cannot hold (fileless programs), exits, the process tree;
- network (polling /proc/PID/net, TCP from BPF): listening sockets and outbound connections.

Each is a :class:`~garrison.sensors.base.Sensor`; ``SENSORS`` in :meth:`SensorSet._register`
is the one place that lists them: a new sensor is its module and one line there. The sensors
that come with the defender are wrapped here in small adapters (``_ExecSensor``…) where their
own interfaces predate the protocol.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from garrison.config import ProcessEventSource, WritePrevention
from garrison.defender.judge import Judge
from garrison.errors import GarrisonError, SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors.base import Sensor, WatchRequest, counters_status
from garrison.sensors.bpf.proc_events import BpfProcEvents
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent, SensorCounters
from garrison.sensors.exec_sensor import ExecSensor
from garrison.sensors.file_sensor import FileSensor
from garrison.sensors.latency import LatencyHistogram
from garrison.sensors.network import NetworkSensor
from garrison.sensors.proc_connector import ProcConnector
from garrison.sensors.process_tracker import ProcessTracker

log = logging.getLogger(__name__)

Event = ProcessEvent | FileEvent | NetEvent
Sink = Callable[[Event], None]


class _Adapter:
    """A sensor whose own interface predates the protocol: started, stopped and let go of as
    it is; ``watch`` and its counters are the adapter's."""

    def __init__(self, sensor: ExecSensor | FileSensor | NetworkSensor) -> None:
        self.sensor = sensor

    def start(self) -> None:
        self.sensor.start()

    def stop(self) -> None:
        self.sensor.stop()

    def unwatch(self, container_id: str) -> None:
        self.sensor.unwatch(container_id)

    def status(self) -> dict[str, Any]:
        return counters_status(self.sensor.counters)


class _ExecSensor(_Adapter):
    def __init__(self, sensor: ExecSensor) -> None:
        super().__init__(sensor)
        self.exec = sensor

    def watch(self, request: WatchRequest) -> None:
        self.exec.watch(request.container)


class _FileSensor(_Adapter):
    def __init__(self, sensor: FileSensor) -> None:
        super().__init__(sensor)
        self.files = sensor

    def watch(self, request: WatchRequest) -> None:
        self.files.watch(request.container, request.guard_writes, request.readonly)


class _NetworkSensor(_Adapter):
    def __init__(self, sensor: NetworkSensor, processes: _ProcessSensor) -> None:
        super().__init__(sensor)
        self.network, self.processes = sensor, processes

    def watch(self, request: WatchRequest) -> None:
        self.network.watch(request.container)
        if self.processes.tcp_events:
            self.network.tcp_events(request.container.id)


class _ProcessSensor:
    """The process tree and the process events that feed it: BPF tracepoints first (unless
    told otherwise), the proc connector when BPF cannot load."""

    def __init__(
        self,
        tracker: ProcessTracker,
        source: ProcessEventSource,
        files: FileSensor,
        layout: CgroupLayout = DOCKER_LAYOUT,
    ) -> None:
        self.tracker, self.source, self.files = tracker, source, files
        self.connector: BpfProcEvents | ProcConnector = ProcConnector(tracker)
        self.layout = layout
        self.reason: str | None = None  # why it runs on the proc connector, when it does
        self.tcp_listeners: list[Callable[[NetEvent], None]] = []

    @property
    def bpf(self) -> BpfProcEvents | None:
        """The BPF source, when it runs."""
        found = self.connector
        return found if isinstance(found, BpfProcEvents) and found.running else None

    @property
    def tcp_events(self) -> bool:
        bpf = self.bpf
        return bpf is not None and bpf.tcp_events

    def start(self) -> None:
        if self.source != "proc_connector":
            try:
                self.connector = self._start_bpf()
            except SensorError as exc:
                self.reason = f"BPF unavailable: {exc}"
                if self.source == "bpf":
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
            self.reason = "chosen (process_events: proc_connector)"
        self.connector = ProcConnector(self.tracker).start()

    def _start_bpf(self) -> BpfProcEvents:
        bpf = BpfProcEvents(self.tracker, layout=self.layout)
        for listener in self.tcp_listeners:
            bpf.add_tcp_listener(listener)
        barrier = self.files.barrier
        if barrier is not None:
            bpf.add_refusal_listener(barrier.on_refused)
        started = bpf.start()
        if barrier is not None:
            barrier.refusals = bpf.refusals
        return started

    def stop(self) -> None:
        self.connector.stop()

    def watch(self, request: WatchRequest) -> None:
        info = request.container
        self.tracker.watch(info.id, info.merged_dir)
        bpf = self.bpf
        if bpf is not None:
            rootfs = info.merged_dir if request.rootfs_judged else None
            bpf.watch(info.id, rootfs, request.learning)

    def unwatch(self, container_id: str) -> None:
        self.tracker.unwatch(container_id)
        if isinstance(self.connector, BpfProcEvents):
            self.connector.unwatch(container_id)

    def status(self) -> dict[str, Any]:
        merged = _merge(self.connector.counters, self.tracker.counters)
        source = "bpf" if isinstance(self.connector, BpfProcEvents) else "proc_connector"
        return {**counters_status(merged), "source": source, "reason": self.reason}


class SensorSet:
    def __init__(
        self,
        judge: Judge,
        sink: Sink,
        network_interval: float = 1.0,
        process_events: ProcessEventSource = "auto",
        write_prevention: WritePrevention = "auto",
        *,
        layout: CgroupLayout = DOCKER_LAYOUT,
    ) -> None:
        """``layout``: where the defended runtime puts its containers' cgroups, which is how
        the process and network sensors find a container's processes."""
        self.judge = judge
        self.exec = ExecSensor(judge, sink, admit=judge.admit)
        self.files = FileSensor(
            sink,
            judge=judge.file,
            may_deny=judge.may_deny,
            write_prevention=write_prevention,
            linked=judge.linked_names,
        )
        self.processes = ProcessTracker(sink, judge.already_seen, claim=judge.claim, layout=layout)
        self.network = NetworkSensor(sink, network_interval, layout=layout)
        self._processes = _ProcessSensor(self.processes, process_events, self.files, layout)
        self._processes.tcp_listeners.append(self.network.on_tcp)
        self.sensors = self._register()
        self.started: list[str] = []
        # sensor → {container id: why that sensor does not watch it} (garrison status). Each
        # change publishes new dicts: the status thread reads them without a lock.
        self.unwatched: dict[str, dict[str, str]] = {}
        judge.records_skipped = self.records_skipped

    def _register(self) -> dict[str, Sensor]:
        """SENSORS: every sensor of the defender, by the name ``garrison status`` shows, in
        the order they start (and take a container: the exec sensor first, so that the others
        know whether it judges the root file system)."""
        return {
            "exec": _ExecSensor(self.exec),
            "files": _FileSensor(self.files),
            "processes": self._processes,
            "network": _NetworkSensor(self.network, self._processes),
        }

    @property
    def connector(self) -> BpfProcEvents | ProcConnector:
        """The process events source in use."""
        return self._processes.connector

    @property
    def source_reason(self) -> str | None:
        """Why the processes sensor runs on the proc connector, when it does."""
        return self._processes.reason

    def start(self) -> None:
        """Start every sensor; one the kernel refuses is logged and left out, not fatal."""
        for name, sensor in self.sensors.items():
            try:
                sensor.start()
            except SensorError as exc:
                log.error("sensor %s not started: %s", name, exc)
            else:
                self.started.append(name)

    def stop(self) -> None:
        for sensor in self.sensors.values():
            with contextlib.suppress(GarrisonError, OSError):
                sensor.stop()

    def caught_up(self) -> bool:
        """The file writes the kernel had queued when called are in the sink (what a block's
        bundle waits for: a write read after the exec it made would miss the journal)."""
        return self.files.caught_up()

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
        request = WatchRequest(container, guard_writes, learning, readonly)
        for name, sensor in self.sensors.items():
            try:
                sensor.watch(request)
            except (GarrisonError, OSError) as exc:
                log.warning("%s: cannot watch %s: %s", name, container.id[:12], exc)
                why = str(exc).removeprefix(f"container {container.id[:12]}: ")
                self._note_unwatched(name, container.id, why)
            else:
                self._note_unwatched(name, container.id, None)
                if name == "exec" and "exec" in self.started and container.merged_dir:
                    request = WatchRequest(container, guard_writes, learning, readonly, True)

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
        bpf = self._processes.bpf
        if bpf is not None:
            try:
                bpf.record(container_id, learning)
            except (GarrisonError, OSError) as exc:
                log.warning("processes: cannot record %s: %s", container_id[:12], exc)

    def records_skipped(self, container_id: str) -> bool:
        """Are the execs the kernel skips in this container recorded all the same?"""
        return isinstance(self.connector, BpfProcEvents) and self.connector.recording(container_id)

    def kill_fileless(self, container_id: str, kill: bool) -> None:
        """Have the kernel kill this container's fileless execs at exec (BPF only: the proc
        connector sees them after the fact, and the defender kills them then)."""
        bpf = self._processes.bpf
        if bpf is not None:
            bpf.kill_fileless(container_id, kill)

    def kill_loaders(self, container_id: str, names: frozenset[str] | None) -> None:
        """Have the kernel kill a loader run by hand at its exec unless it loads one of
        ``names`` (garrison.policy.loader); None: none. BPF only: with the proc connector
        the defender judges the file loaded once it runs, and kills it then."""
        bpf = self._processes.bpf
        if bpf is None:
            return
        try:
            bpf.kill_loaders(container_id, names)
        except (GarrisonError, OSError) as exc:
            log.warning("processes: cannot arm the loader check of %s: %s", container_id[:12], exc)

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
        for sensor in self.sensors.values():
            with contextlib.suppress(GarrisonError, OSError):
                sensor.unwatch(container_id)
        for sensor_name in list(self.unwatched):
            self._note_unwatched(sensor_name, container_id, None)

    def verdict_latency(self) -> dict[str, dict[str, Any]]:
        """Per kind of permission event (exec, file): how long the waiting process waited
        for its answer, as a histogram (``garrison.sensors.latency``)."""
        files = self.files.latency or LatencyHistogram()
        return {"exec": self.exec.latency.snapshot(), "file": files.snapshot()}

    def counters(self) -> dict[str, dict[str, Any]]:
        """Per sensor: events, drops, late, errors, and the containers it does not watch
        (``unwatched``: id → why) (``garrison status``)."""
        unwatched = self.unwatched  # one published version for every sensor
        return {
            name: {
                "running": name in self.started,
                **sensor.status(),
                "unwatched": dict(unwatched.get(name, {})),
            }
            for name, sensor in self.sensors.items()
        }


def _merge(a: SensorCounters, b: SensorCounters) -> SensorCounters:
    return SensorCounters(
        events=a.events,
        drops=a.drops + b.drops,
        late=a.late + b.late,
        errors=a.errors + b.errors,
        extra={**a.extra, **b.extra, "recorded": b.events},
    )
