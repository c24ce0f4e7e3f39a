"""The kernel's process events connector: fork, exec and exit of every process on the host.

A netlink socket (``NETLINK_CONNECTOR``) bound to the ``CN_IDX_PROC`` group receives one
datagram per event once ``PROC_CN_MCAST_LISTEN`` is sent (Documentation/driver-api/
connector.rst, include/uapi/linux/cn_proc.h). A datagram is one netlink message, host byte
order::

    struct nlmsghdr   { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }          16 bytes
    struct cn_msg     { u32 idx; u32 val; u32 seq; u32 ack; u16 len; u16 flags; }  20 bytes
    struct proc_event { u32 what; u32 cpu; u64 timestamp_ns; union event_data; }   16 + 24
      fork: u32 parent_pid, parent_tgid, child_pid, child_tgid
      exec: u32 process_pid, process_tgid
      exit: u32 process_pid, process_tgid, exit_code, exit_signal, parent_pid, parent_tgid

Events arrive after the fact (asynchronously): this sensor records, it cannot stop anything.
``cn_msg.seq`` is a per-CPU counter the kernel bumps for every event it sends (cn_proc.c
``send_msg()``, under a per-CPU lock), so a gap in (cpu, seq) counts exactly the events lost,
which ENOBUFS alone cannot tell.

:class:`ProcConnector` reads the socket on a thread of its own and hands parsed events to
listeners; :class:`garrison.sensors.process_tracker.ProcessTracker` is one.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from garrison.errors import InvalidInput, SensorError
from garrison.sensors.events import SensorCounters

log = logging.getLogger(__name__)

NETLINK_CONNECTOR = 11
CN_IDX_PROC = 1
CN_VAL_PROC = 1
PROC_CN_MCAST_LISTEN = 1
PROC_CN_MCAST_IGNORE = 2
NLMSG_DONE = 3
SO_RCVBUFFORCE = 33  # socket(7): like SO_RCVBUF, past rmem_max, with CAP_NET_ADMIN

PROC_EVENT_NONE = 0  # the acknowledgement of a LISTEN / IGNORE
PROC_EVENT_FORK = 0x00000001
PROC_EVENT_EXEC = 0x00000002
PROC_EVENT_EXIT = 0x80000000

DEFAULT_RCVBUF = 32 * 1024 * 1024  # ~40 000 queued events (an skb per event is ~800 bytes)
# Under a stream of events (wakes closer together than BUSY_GAP) the reader naps BATCH_DELAY
# after each drain, so that the next wake finds several events queued: a wake per event
# (the kernel waking this thread, a context switch, a poll) cost more than the event itself,
# and the workload paid for it on a two-core machine. An exec after a quiet spell is read at
# once; only under a storm can a process living less than BATCH_DELAY be gone when read.
BATCH_DELAY = 0.001
BUSY_GAP = 0.005

_NLMSGHDR = struct.Struct("=IHHII")
_CN_MSG = struct.Struct("=IIIIHH")
_PROC_EVENT = struct.Struct("=IIQ")
_FORK = struct.Struct("=IIII")
_EXEC = struct.Struct("=II")
_EXIT = struct.Struct("=IIII")
_EXIT_PARENT = struct.Struct("=II")  # appended in Linux 4.19; absent before
_HEADERS = _NLMSGHDR.size + _CN_MSG.size


class MalformedMessage(InvalidInput):
    """A netlink datagram that is not a proc connector message."""


@dataclass(frozen=True, slots=True)
class ProcEventBase:
    cpu: int
    seq: int  # cn_msg.seq: per-CPU, consecutive for consecutive events of one CPU
    timestamp_ns: int  # CLOCK_MONOTONIC


@dataclass(frozen=True, slots=True)
class ForkEvent(ProcEventBase):
    parent_pid: int  # the parent *thread*; the parent process is parent_tgid
    parent_tgid: int
    child_pid: int
    child_tgid: int

    @property
    def is_thread(self) -> bool:
        """A new thread of an existing process, not a new process."""
        return self.child_pid != self.child_tgid


@dataclass(frozen=True, slots=True)
class ExecRecord:
    """What the exec itself held, read in the kernel as it happened (the BPF source)."""

    filename: str  # the name asked for, as the caller passed it
    argv: tuple[str, ...]  # cut at 1 KiB
    uid: int
    on_rootfs: bool  # a file of the container's root file system
    mode: int | None = None  # st_mode of the file executed (setuid checks)
    exe_name: str = ""  # the file's own name ("busybox", "ld-linux-x86-64.so.2", "memfd:x")
    fileless: bool = False  # no link left: a memfd, a deleted file
    killed: bool = False  # killed in the kernel before its first instruction
    loader: bool = False  # a dynamic loader run by hand
    size: int = 0  # of the file executed
    ino: int = 0  # the file's inode and device (the kernel's encoding: see kernel_dev)
    dev: int = 0


@dataclass(frozen=True, slots=True)
class ExecEvent(ProcEventBase):
    pid: int
    tgid: int
    # Known to a source that filters by container in the kernel (BPF), not to the connector.
    container_id: str = ""
    ppid: int = 0
    record: ExecRecord | None = None


@dataclass(frozen=True, slots=True)
class ExitEvent(ProcEventBase):
    pid: int
    tgid: int
    status: int  # task->exit_code: a wait(2) status
    exit_signal: int  # sent to the parent (SIGCHLD); -1 for a thread
    parent_pid: int = 0
    parent_tgid: int = 0

    @property
    def is_thread(self) -> bool:
        return self.pid != self.tgid

    @property
    def code(self) -> int:
        return (self.status >> 8) & 0xFF

    @property
    def signal(self) -> int:
        """The signal that killed the process, 0 for a normal exit."""
        return self.status & 0x7F


@dataclass(frozen=True, slots=True)
class OtherEvent(ProcEventBase):
    """An event of a kind Garrison does not use (uid, gid, sid, comm, ptrace, coredump)."""

    what: int


ProcEvent = ForkEvent | ExecEvent | ExitEvent
Listener = Callable[[ProcEvent], None]
_E = TypeVar("_E")


def deliver(listeners: Iterable[Callable[[_E], None]], event: _E, counters: SensorCounters) -> None:
    """Hand an event to each listener; one that raises is logged and counted in ``errors``,
    and the others still get the event."""
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            counters.errors += 1
            log.exception("listener failed on %s", event)


def parse_datagram(data: bytes) -> list[ProcEvent | OtherEvent]:
    """The events of one datagram; the acknowledgement of a LISTEN or IGNORE is skipped."""
    events: list[ProcEvent | OtherEvent] = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length = _NLMSGHDR.unpack_from(data, offset)[0]
        if length < _HEADERS or offset + length > len(data):
            raise MalformedMessage(f"netlink message of length {length} at offset {offset}")
        event = parse_message(data[offset : offset + length])
        if event is not None:
            events.append(event)
        offset += (length + 3) & ~3  # NLMSG_ALIGN
    return events


def parse_message(msg: bytes) -> ProcEvent | OtherEvent | None:
    """One netlink message → its event; None for the acknowledgement of a LISTEN or IGNORE."""
    idx, val, seq, _ack, length, _flags = _CN_MSG.unpack_from(msg, _NLMSGHDR.size)
    body = msg[_HEADERS : _HEADERS + length]
    if (idx, val) != (CN_IDX_PROC, CN_VAL_PROC):
        raise MalformedMessage(f"connector message for {idx}:{val}, not the proc connector")
    if len(body) < _PROC_EVENT.size or len(body) != length:
        raise MalformedMessage(f"proc event of {len(body)} bytes, header says {length}")
    what, cpu, timestamp = _PROC_EVENT.unpack_from(body)
    try:
        return _parse_event(what, (cpu, seq, timestamp), body[_PROC_EVENT.size :])
    except struct.error as exc:
        raise MalformedMessage(f"proc event {what:#x} too short ({len(body)} bytes)") from exc


def _parse_event(
    what: int, head: tuple[int, int, int], data: bytes
) -> ProcEvent | OtherEvent | None:
    if what == PROC_EVENT_NONE:  # its seq echoes ours instead of counting events
        return None
    if what == PROC_EVENT_FORK:
        return ForkEvent(*head, *_FORK.unpack_from(data))
    if what == PROC_EVENT_EXEC:
        return ExecEvent(*head, *_EXEC.unpack_from(data))
    if what == PROC_EVENT_EXIT:
        pid, tgid, status, signal = _EXIT.unpack_from(data)
        signal = signal - (1 << 32) if signal >= 1 << 31 else signal
        parents = (0, 0)
        if len(data) >= _EXIT.size + _EXIT_PARENT.size:
            parents = _EXIT_PARENT.unpack_from(data, _EXIT.size)
        return ExitEvent(*head, pid, tgid, status, signal, *parents)
    return OtherEvent(*head, what)


def control_message(op: int) -> bytes:
    """The datagram that subscribes (LISTEN) or unsubscribes (IGNORE) this socket."""
    payload = struct.pack("=I", op)
    cn = _CN_MSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(payload), 0) + payload
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn


class SequenceGaps:
    """Counts events lost, from gaps in each CPU's sequence numbers."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}
        self.lost = 0

    def see(self, cpu: int, seq: int) -> int:
        """Record one event; returns how many of this CPU's events were skipped before it."""
        expected = self._next.get(cpu)
        self._next[cpu] = (seq + 1) & 0xFFFFFFFF
        if expected is None:
            return 0
        gap = (seq - expected) & 0xFFFFFFFF
        if gap >= 1 << 31:  # behind, not ahead: never a loss
            return 0
        self.lost += gap
        return gap


class ProcConnector:
    """The proc connector socket, read on a thread of its own.

    Listeners run on that thread, one event at a time: they must not block (reading /proc is
    the most they may do). A listener that raises is logged and counted in ``errors``.
    ``counters.drops`` counts events the kernel could not queue (socket buffer full).
    """

    def __init__(
        self,
        listener: Listener | None = None,
        *,
        rcvbuf: int = DEFAULT_RCVBUF,
        batch_delay: float = BATCH_DELAY,
    ) -> None:
        self.rcvbuf = rcvbuf
        self.batch_delay = batch_delay
        self.counters = SensorCounters()
        self._listeners: list[Listener] = [listener] if listener else []
        self._gaps = SequenceGaps()
        self._sock: socket.socket | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ProcConnector:
        """Open and subscribe the socket, then start reading. SensorError when refused."""
        if self._thread is not None:
            return self
        self._sock = open_socket(self.rcvbuf)
        self._wake = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(
            target=self._run, args=(self._sock, self._wake[0]), name="proc-connector", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, unsubscribe, close. Events still queued in the socket are dropped."""
        if self._thread is None or self._wake is None or self._sock is None:
            return
        os.write(self._wake[1], b"x")
        self._thread.join(timeout)
        self._thread = None
        close_socket(self._sock)
        for fd in self._wake:
            os.close(fd)
        self._sock, self._wake = None, None

    def __enter__(self) -> ProcConnector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, sock: socket.socket, wake: int) -> None:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(wake, select.POLLIN)
        last_wake = 0.0
        while True:
            ready = {fd for fd, _mask in poller.poll()}
            if wake in ready:
                return
            now = time.monotonic()
            try:
                self._drain(sock)
            except OSError as exc:  # not seen in practice; never let the reader die silently
                self.counters.errors += 1
                log.error("proc connector: read failed: %s", exc)
            if now - last_wake < BUSY_GAP and self.batch_delay > 0:
                time.sleep(self.batch_delay)  # a stream of events: let a batch queue up
            last_wake = now

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                # The queue overflowed: the sequence gap of the next event says by how much.
                self.counters.extra["overruns"] = self.counters.extra.get("overruns", 0) + 1
                self.counters.drops = max(self.counters.drops, self._gaps.lost, 1)
                continue
            self.dispatch(data)

    def dispatch(self, data: bytes) -> None:
        """Parse one datagram and hand its events to the listeners (the reader calls this)."""
        try:
            events = parse_datagram(data)
        except MalformedMessage as exc:
            self.counters.errors += 1
            log.warning("proc connector: %s", exc)
            return
        for event in events:
            # Every kind of event takes a sequence number, those Garrison ignores too.
            if self._gaps.see(event.cpu, event.seq):
                self.counters.drops = max(self._gaps.lost, self.counters.extra.get("overruns", 0))
            if not isinstance(event, OtherEvent):
                self.counters.events += 1
                self._deliver(event)

    def _deliver(self, event: ProcEvent) -> None:
        deliver(self._listeners, event, self.counters)


def open_socket(rcvbuf: int = DEFAULT_RCVBUF) -> socket.socket:
    """A subscribed proc connector socket. SensorError when the kernel refuses it."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
    except OSError as exc:
        raise SensorError(f"cannot open the proc connector: {exc.strerror}") from exc
    try:
        _set_rcvbuf(sock, rcvbuf)
        sock.bind((0, CN_IDX_PROC))
        sock.send(control_message(PROC_CN_MCAST_LISTEN))
    except OSError as exc:
        sock.close()
        raise SensorError(
            f"cannot subscribe to the proc connector ({exc.strerror}): run as root"
        ) from exc
    return sock


def close_socket(sock: socket.socket) -> None:
    """Unsubscribe (the kernel counts listeners and stops sending at zero), then close."""
    try:
        sock.send(control_message(PROC_CN_MCAST_IGNORE))
    except OSError as exc:
        log.debug("proc connector: unsubscribe failed: %s", exc)
    sock.close()


def _set_rcvbuf(sock: socket.socket, size: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:  # without CAP_NET_ADMIN: as much as net.core.rmem_max allows
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
