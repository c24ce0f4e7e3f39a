"""Process events from the kernel's scheduler tracepoints, filtered in the kernel.

The programs are BTF-typed tracepoints (``tp_btf``): the kernel attaches them through the bpf
syscall alone, without tracefs, which hosts of this project's kind do not mount at boot.

The program (``proc_events.bpf.c``) runs at every exec and exit on the host and keeps only
what the defender needs: processes of the containers it follows (by cgroup v2 id), and of
those, execs of files *off* the container's root file system (volumes, bind mounts: the
fanotify exec sensor covers the rest) and the exits of processes so reported; and, while a
container's model learns (``record``), every exec of its root file system with the name
asked for, argv and uid read in the kernel at the exec — so that the files the exec sensor
judged once can be skipped by the kernel from then on without losing one exec for the model.
The proc connector would wake the defender for every fork, exec and exit of the host, three
times per process; on a learned workload this source does not wake it at all.

It produces the proc connector's :class:`~garrison.sensors.proc_connector.ExecEvent` and
:class:`~garrison.sensors.proc_connector.ExitEvent` for the same listeners (the
:class:`~garrison.sensors.process_tracker.ProcessTracker`). No fork events: the containers are
known from the cgroup, not from the process tree.
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from garrison.errors import SensorError
from garrison.sensors.bpf.build import build
from garrison.sensors.bpf.libbpf import BpfObject, RingBuffer, map_delete, map_update, percpu_sum
from garrison.sensors.bpf.loader_names import LoaderNames
from garrison.sensors.cgroup import container_cgroup2_id
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout
from garrison.sensors.events import NetEvent, RefusedOp, RefusedWrite, SensorCounters
from garrison.sensors.proc_connector import (
    ExecEvent,
    ExecRecord,
    ExitEvent,
    Listener,
    ProcEvent,
    deliver,
)

log = logging.getLogger(__name__)

PROGRAM = "proc_events"
POLL_MS = 100  # how long stop() may wait for the reader
EVENT_EXEC, EVENT_EXIT, EVENT_TCP, EVENT_REFUSED = 1, 2, 3, 4
TCP_SYN_SENT, TCP_LISTEN = 2, 10
AF_INET = 2
COUNT_SENT, COUNT_LOST, COUNT_ON_ROOTFS = 0, 1, 2
RECORD_ROOTFS, REFUSALS, KILL_FILELESS, KILL_LOADER = 1, 2, 4, 8
EXEC_FILELESS, EXEC_KILLED, EXEC_LOADER = 1, 2, 4
NAME_SLOT, DEPTH = 64, 8  # the caller's paths in a refused write's record
OPS: dict[int, RefusedOp] = {1: "open", 2: "create", 3: "delete", 4: "truncate", 5: "attrs"}
# The pair of programs on the raw syscall tracepoints that report refused writes.
REFUSAL_PROGRAMS = ("garrison_sys_enter", "garrison_sys_exit")
# struct event of proc_events.bpf.c: a header, the executed file's name and the file name asked
# for, then argv (the record stops at its end: args_size bytes)
_EVENT = struct.Struct("=IIIIQQQIiiIIIIIIIQ32s256s")
# struct tcp_record, in the filename buffer of an EVENT_TCP record
_TCP = struct.Struct("=HHHH16s16s")


# A TCP socket of a watched container started listening or connecting: a NetEvent whose
# process_path is left to the listener (the connect's local port is 0: chosen just after).
TcpListener = Callable[[NetEvent], None]
RefusalListener = Callable[[RefusedWrite], None]


class _Container(ctypes.Structure):
    """struct container of proc_events.bpf.c: the value of the ``watched`` map."""

    _fields_ = (("rootfs_dev", ctypes.c_uint32), ("flags", ctypes.c_uint32))


def kernel_dev(st_dev: int) -> int:
    """A device number as the kernel keeps it (``MKDEV``: major << 20 | minor), from stat's."""
    return (os.major(st_dev) << 20) | os.minor(st_dev)


class BpfProcEvents:
    """The tracepoint programs, attached, and a thread reading their ring buffer.

    Same use as :class:`~garrison.sensors.proc_connector.ProcConnector` (listeners run on the
    reader thread and must not block), plus ``watch``/``unwatch``: the kernel reports nothing
    about a container until it is watched.
    """

    def __init__(
        self,
        listener: Listener | None = None,
        *,
        cache_dir: Path | None = None,
        layout: CgroupLayout = DOCKER_LAYOUT,
    ) -> None:
        self.cache_dir = cache_dir
        self.layout = layout  # where the runtime puts its containers' cgroups
        self._listeners: list[Listener] = [listener] if listener else []
        self._tcp_listeners: list[TcpListener] = []
        self.tcp_events = False  # the socket state program is attached
        self._counters = SensorCounters()
        self._obj: BpfObject | None = None
        self._ring: RingBuffer | None = None
        self._watched_fd = self._counters_fd = -1
        self._cgroups: dict[str, int] = {}  # container id → cgroup id
        self._containers: dict[int, str] = {}  # cgroup id → container id
        self._rootfs: dict[str, int] = {}  # container id → its root's device, 0: none
        self._recording: set[str] = set()  # containers whose root's execs are recorded
        self._refusing: set[str] = set()  # containers whose refused writes are sent
        self._killing: set[str] = set()  # containers whose fileless execs the kernel kills
        self._loaders = LoaderNames()  # what a loader run by hand may load, per container
        self._refusal_listeners: list[RefusalListener] = []
        self._refusal_links: list[int] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add_tcp_listener(self, listener: TcpListener) -> None:
        """TCP listens and connects of watched containers (when ``tcp_events``)."""
        self._tcp_listeners.append(listener)

    def add_refusal_listener(self, listener: RefusalListener) -> None:
        """Writes refused by read-only mounts in the containers given to :meth:`refusals`."""
        self._refusal_listeners.append(listener)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def counters(self) -> SensorCounters:
        """``drops``: events the ring buffer had no room for; ``extra.on_rootfs``: execs the
        kernel left to the fanotify sensor; ``extra.loader_armed``: containers whose loader
        runs the kernel checks."""
        if self._counters_fd >= 0:
            self._counters.drops = percpu_sum(self._counters_fd, COUNT_LOST)
            self._counters.extra["on_rootfs"] = percpu_sum(self._counters_fd, COUNT_ON_ROOTFS)
        self._counters.extra["loader_armed"] = self._loaders.armed_count
        return self._counters

    def start(self) -> BpfProcEvents:
        """Build (once), load and attach the programs; SensorError when anything refuses."""
        if self._thread is not None:
            return self
        obj = BpfObject(str(build(PROGRAM, self.cache_dir)))
        try:
            for program in ("garrison_exec", "garrison_exit"):
                obj.attach(program)
            self.tcp_events = _attach_optional(obj, "garrison_tcp")
            self._watched_fd = obj.map_fd("watched")
            self._counters_fd = obj.map_fd("counters")
            self._loaders.fd = obj.map_fd("loader_ok")
            self._ring = RingBuffer(obj.map_fd("events"), self._sample)
        except SensorError:
            obj.close()
            raise
        self._obj = obj
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="bpf-proc-events", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout)
        self._thread = None
        self.counters  # noqa: B018 - read the kernel's counters one last time
        self._counters_fd = self._watched_fd = -1
        self._loaders.closed()
        if self._ring is not None:
            self._ring.close()
        if self._obj is not None:
            self._obj.close()
        self._ring, self._obj = None, None

    def __enter__(self) -> BpfProcEvents:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def watch(self, container_id: str, rootfs: str | None = None, record: bool = False) -> None:
        """Report this container's processes. ``rootfs`` (its MergedDir) when the fanotify
        exec sensor covers it: execs of files there are then left to that sensor, unless
        ``record`` (see :meth:`record`). SensorError when the container has no cgroup v2
        (stopped meanwhile, or a host without the unified hierarchy)."""
        cgroup = container_cgroup2_id(container_id, layout=self.layout)
        if cgroup is None:
            raise SensorError(f"no cgroup v2 for container {container_id[:12]}")
        dev = kernel_dev(os.stat(rootfs).st_dev) if rootfs else 0
        with self._lock:
            self._cgroups[container_id] = cgroup
            self._containers[cgroup] = container_id
            self._rootfs[container_id] = dev
            self._loaders.sync(container_id, cgroup)
            self._update(container_id, record)

    def record(self, container_id: str, on: bool) -> None:
        """Send every exec of the container's root file system too, with what it held (while
        its model learns), or stop. A container not watched is ignored."""
        with self._lock:
            if container_id in self._cgroups:
                self._update(container_id, on)

    def recording(self, container_id: str) -> bool:
        return container_id in self._recording

    def refusals(self, container_id: str, on: bool) -> None:
        """Send the writes the kernel refuses with EROFS in this container (it has read-only
        paths), or stop. The programs are attached while any container needs them. A
        container not watched yet is sent from its :meth:`watch` on; SensorError when the
        programs cannot attach."""
        with self._lock:
            if on:
                self._attach_refusals()
                self._refusing.add(container_id)
            else:
                self._refusing.discard(container_id)
            if container_id in self._cgroups:
                self._update(container_id, container_id in self._recording)
            if not self._refusing:
                self._detach_refusals()

    def kill_fileless(self, container_id: str, on: bool) -> None:
        """Kill every fileless exec (a memfd, a deleted file) of this container in the kernel,
        before its first instruction (its policy refuses them), or stop. Remembered for a
        container not watched yet."""
        with self._lock:
            if on:
                self._killing.add(container_id)
            else:
                self._killing.discard(container_id)
            if container_id in self._cgroups:
                self._update(container_id, container_id in self._recording)

    def killing(self, container_id: str) -> bool:
        return container_id in self._killing

    def kill_loaders(self, container_id: str, names: frozenset[str] | None) -> None:
        """Kill, at its exec, every run of a dynamic loader by hand in this container unless
        the file it loads is one of ``names`` (absolute); None: kill none. Remembered for a
        container not watched yet."""
        with self._lock:
            self._loaders.want(container_id, names)
            cgroup = self._cgroups.get(container_id)
            if cgroup is None:
                return
            if names is not None:
                self._loaders.sync(container_id, cgroup)  # the names before the flag
            self._update(container_id, container_id in self._recording)
            if names is None:
                self._loaders.sync(container_id, cgroup)

    def kills_loaders(self, container_id: str) -> bool:
        return self._loaders.armed(container_id)

    def _attach_refusals(self) -> None:
        if self._refusal_links or self._obj is None:
            return
        try:
            for program in REFUSAL_PROGRAMS:
                self._refusal_links.append(self._obj.attach(program))
        except SensorError:
            self._detach_refusals()
            raise

    def _detach_refusals(self) -> None:
        for link in self._refusal_links:
            if self._obj is not None:
                self._obj.detach(link)
        self._refusal_links = []

    def _update(self, container_id: str, record: bool) -> None:
        if self._watched_fd < 0:
            raise SensorError("the BPF process events are not started")
        flags = RECORD_ROOTFS if record else 0
        flags |= REFUSALS if container_id in self._refusing else 0
        flags |= KILL_FILELESS if container_id in self._killing else 0
        flags |= KILL_LOADER if self._loaders.armed(container_id) else 0
        value = _Container(self._rootfs[container_id], flags)
        map_update(self._watched_fd, ctypes.c_uint64(self._cgroups[container_id]), value)
        if record:
            self._recording.add(container_id)
        else:
            self._recording.discard(container_id)

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            cgroup = self._cgroups.pop(container_id, None)
            self._rootfs.pop(container_id, None)
            self._recording.discard(container_id)
            self._refusing.discard(container_id)
            self._killing.discard(container_id)
            if not self._refusing:
                self._detach_refusals()
            if cgroup is None:
                self._loaders.drop(container_id, None)
                return
            self._containers.pop(cgroup, None)
            if self._watched_fd >= 0:
                map_delete(self._watched_fd, ctypes.c_uint64(cgroup))
            self._loaders.drop(container_id, cgroup)

    def _run(self) -> None:
        ring = self._ring
        while ring is not None and not self._stopping.is_set():
            result = ring.poll(POLL_MS)
            if result < 0 and result != -4:  # -EINTR: a signal, poll again
                self._counters.errors += 1
                log.error("BPF process events: ring buffer poll failed: %s", os.strerror(-result))
                self._stopping.wait(1.0)

    def _sample(self, data: bytes) -> None:
        try:
            event = parse_event(data, self._containers)
        except (struct.error, ValueError) as exc:
            self._counters.errors += 1
            log.warning("BPF process events: bad record: %s", exc)
            return
        if isinstance(event, NetEvent):
            self._counters.extra["tcp"] = self._counters.extra.get("tcp", 0) + 1
            deliver(self._tcp_listeners, event, self._counters)
        elif isinstance(event, RefusedWrite):
            self._counters.extra["refused"] = self._counters.extra.get("refused", 0) + 1
            deliver(self._refusal_listeners, event, self._counters)
        else:
            self._counters.events += 1
            deliver(self._listeners, event, self._counters)


def _attach_optional(obj: BpfObject, program: str) -> bool:
    try:
        obj.attach(program)
    except SensorError as exc:
        log.warning("BPF %s not attached (%s): TCP sockets are polled", program, exc)
        return False
    return True


def parse_event(
    data: bytes, containers: Mapping[int, str] | None = None
) -> ProcEvent | NetEvent | RefusedWrite:
    """One ring buffer record → the proc connector's event of the same meaning (or a TCP
    event); an exec names its container (``containers``: cgroup id → container id) and its
    parent."""
    (kind, pid, tgid, ppid, cgroup, time_ns, ino, dev, code, signal, cpu, uid, args_size,
     on_rootfs, mode, flags, _pad, size, exe_name, filename) = _EVENT.unpack_from(data)  # fmt: skip
    args = data[_EVENT.size : _EVENT.size + args_size]
    if kind == EVENT_EXEC:
        container_id = (containers or {}).get(cgroup, "")
        record = ExecRecord(
            os.fsdecode(filename.split(b"\0", 1)[0]),
            _argv(args),
            uid,
            bool(on_rootfs),
            mode,
            exe_name=os.fsdecode(exe_name.split(b"\0", 1)[0]),
            fileless=bool(flags & EXEC_FILELESS),
            killed=bool(flags & EXEC_KILLED),
            loader=bool(flags & EXEC_LOADER),
            size=size,
            ino=ino,
            dev=dev,
        )
        return ExecEvent(cpu, 0, time_ns, pid, tgid, container_id, ppid, record)
    if kind == EVENT_EXIT:
        return ExitEvent(cpu, 0, time_ns, pid, tgid, code, signal, ppid, ppid)
    if kind == EVENT_TCP:
        return _tcp_event((containers or {}).get(cgroup, ""), tgid, filename)
    if kind == EVENT_REFUSED:
        path = os.fsdecode(filename.split(b"\0", 1)[0])
        dfd = ctypes.c_int32(dev).value
        container_id = (containers or {}).get(cgroup, "")
        op = OPS.get(mode, "open")
        exe, cwd = _walked(args[: NAME_SLOT * DEPTH]), _walked(args[NAME_SLOT * DEPTH :])
        return RefusedWrite(
            container_id, pid, tgid, path, dfd, op, signal, -code, time.time(), exe or "", cwd
        )
    raise ValueError(f"unknown event kind {kind}")


def _walked(raw: bytes) -> str | None:
    """A path the program walked up from a dentry: names leaf first, NAME_SLOT bytes each;
    None when it is cut ("...") or not on the root's file system ("?"): then /proc is read."""
    names = [raw[i : i + NAME_SLOT].split(b"\0", 1)[0] for i in range(0, len(raw), NAME_SLOT)]
    names = [n for n in names if n]
    if names[:1] == [b"?"] or b"..." in names or len(raw) < NAME_SLOT:
        return None
    return "/" + "/".join(os.fsdecode(n) for n in reversed(names))


def _tcp_event(container_id: str, pid: int, raw: bytes) -> NetEvent:
    family, sport, dport, state, saddr, daddr = _TCP.unpack_from(raw)
    size = 4 if family == AF_INET else 16
    local, remote = _ip(saddr[:size]), _ip(daddr[:size])
    now = time.time()
    if state == TCP_LISTEN:
        return NetEvent(container_id, "listen", "tcp", local, sport, pid=pid, time=now)
    return NetEvent(container_id, "connect", "tcp", local, sport, remote, dport, pid, time=now)


def _ip(raw: bytes) -> str:
    """An address in network order; IPv4-mapped IPv6 comes back as IPv4."""
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _argv(raw: bytes) -> tuple[str, ...]:
    """NUL-separated arguments; the last one may be cut (argv longer than the record)."""
    if not raw:
        return ()
    return tuple(os.fsdecode(a) for a in raw.rstrip(b"\0").split(b"\0"))
