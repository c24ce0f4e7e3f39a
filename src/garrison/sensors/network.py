"""Listening sockets and outbound connections of containers, polled from ``/proc/PID/net``.

``/proc/PID/net/{tcp,tcp6,udp,udp6}`` list every socket of the network namespace that PID
lives in (proc(5)). Docker gives each container a namespace of its own, so one read through
one of its pids shows all the container's sockets. Addresses are the hex of the kernel's
in-memory words: IPv4 is one u32 in host byte order (``0100007F`` is 127.0.0.1 here, on
little-endian x86), IPv6 is four such words (net/ipv4/tcp_ipv4.c ``get_tcp4_sock()``,
net/ipv6/tcp_ipv6.c ``get_tcp6_sock()``); ports are plain hex.

The owner of a socket is found by its inode: the process holding an fd that links to
``socket:[INODE]``. Polling misses what lives and dies between two polls; docs/sensors-network.md
says what that means.

Reading ``tcp`` and ``tcp6`` is the costly part: the kernel walks the host's whole TCP hash
table for each, whatever the namespace (some 3 ms each on a machine with 24 GiB). When TCP
listens and connects come as events instead (``tcp_events``: the BPF socket state tracepoint,
delivered to :meth:`NetworkSensor.on_tcp`, see :meth:`NetworkSensor.tcp_events`), a
container's TCP tables are read once, when it is first polled (for what it had before it was
watched), and only UDP is polled after that.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from garrison.runtime.base import ContainerInfo
from garrison.sensors.cgroup import CGROUP_ROOT, container_pids
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout
from garrison.sensors.events import NetEvent, NetKind, SensorCounters

log = logging.getLogger(__name__)

Protocol = Literal["tcp", "udp"]
# include/net/tcp_states.h. UDP reuses them: ESTABLISHED once connect()ed, CLOSE otherwise.
ESTABLISHED, SYN_SENT, TIME_WAIT, CLOSE, LISTEN = 0x01, 0x02, 0x06, 0x07, 0x0A
# States a socket that did connect() passes through, to its TIME_WAIT after it closed first.
# SYN_RECV (3) is left out: that is the accepting side.
OUTBOUND_TCP_STATES = frozenset({ESTABLISHED, SYN_SENT, 0x04, 0x05, TIME_WAIT, 0x08, 0x09, 0x0B})
# Linux's default net.ipv4.ip_local_port_range: an unconnected UDP socket on such a port was
# most likely bound by sendto() (autobind) of a client, not by a server.
EPHEMERAL_PORTS = range(32768, 61000)
PROC_NET_FILES: tuple[tuple[str, Protocol], ...] = (
    ("tcp", "tcp"),
    ("tcp6", "tcp"),
    ("udp", "udp"),
    ("udp6", "udp"),
)


@dataclass(frozen=True, slots=True)
class SocketEntry:
    """One line of /proc/net/{tcp,udp}[6]."""

    protocol: Protocol
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    state: int
    inode: int  # 0 for a socket no process holds any more (TIME_WAIT)


def decode_address(text: str) -> tuple[str, int]:
    """``0100007F:2328`` → ("127.0.0.1", 9000); IPv4-mapped IPv6 comes back as IPv4."""
    hex_ip, _, hex_port = text.partition(":")
    raw = bytes.fromhex(hex_ip)
    if len(raw) not in (4, 16):
        raise ValueError(f"address of {len(raw)} bytes")
    if sys.byteorder == "little":  # each word is in host order, the words in network order
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip), int(hex_port, 16)


def parse_proc_net(raw: bytes, protocol: Protocol) -> list[SocketEntry]:
    """Every socket of one /proc/net table; a malformed line is skipped, never fatal."""
    entries = []
    for line in raw.decode("ascii", "replace").splitlines()[1:]:
        entry = _parse_line(line.split(), protocol)
        if entry is not None:
            entries.append(entry)
    return entries


def _parse_line(fields: list[str], protocol: Protocol) -> SocketEntry | None:
    # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    if len(fields) < 10:
        return None
    try:
        local, remote = decode_address(fields[1]), decode_address(fields[2])
        return SocketEntry(protocol, *local, *remote, int(fields[3], 16), int(fields[9]))
    except ValueError:
        return None


def listening_ports(entries: Iterable[SocketEntry]) -> set[int]:
    """TCP ports some socket of the namespace listens on."""
    return {e.local_port for e in entries if e.protocol == "tcp" and e.state == LISTEN}


def classify(entry: SocketEntry, tcp_listen_ports: set[int]) -> NetKind | None:
    """listen, connect (the namespace initiated it), or None (accepted, unbound, client)."""
    if entry.protocol == "tcp":
        if entry.state == LISTEN:
            return "listen"
        if entry.state in OUTBOUND_TCP_STATES and entry.local_port not in tcp_listen_ports:
            return "connect"
        return None
    if entry.state == ESTABLISHED and entry.remote_port:
        return "connect"
    if entry.state == CLOSE and not entry.remote_port:
        return None if entry.local_port in EPHEMERAL_PORTS else "listen"
    return None


def event_key(kind: NetKind, entry: SocketEntry | NetEvent) -> tuple[str | int, ...]:
    """What makes an event new for a container: the port listened on, or the remote end."""
    if kind == "listen":
        return (kind, entry.protocol, entry.local_port)
    return (kind, entry.protocol, entry.remote_ip, entry.remote_port)


@dataclass(slots=True)
class _Watched:
    info: ContainerInfo
    reported: set[tuple[str | int, ...]] = field(default_factory=set)
    listen_ports: set[int] = field(default_factory=set)  # ever seen: accepted sockets outlive
    foreign_inodes: set[int] = field(default_factory=set)  # host network: others' sockets
    tcp_read: bool = False  # its TCP tables were read once (enough with ``tcp_events``)


@dataclass(slots=True)
class _Namespace:
    pid: int
    members: list[_Watched]
    is_host: bool


class NetworkSensor:
    """Polls each watched container's network namespace every ``interval`` seconds.

    ``start()`` runs the polls on a thread of its own (reading /proc blocks, briefly);
    ``poll_once()`` does one poll in the caller's thread and returns the new events. Each
    distinct listening port and remote end is reported once per container; ``sink`` is
    called on the polling thread and must not block.
    """

    def __init__(
        self,
        sink: Callable[[NetEvent], None],
        interval: float = 1.0,
        *,
        proc_root: str = "/proc",
        cgroup_root: str = CGROUP_ROOT,
        layout: CgroupLayout = DOCKER_LAYOUT,
    ) -> None:
        self.sink = sink
        self._layout = layout  # where the runtime puts its containers' cgroups
        self.interval = interval
        self.counters = SensorCounters()
        self._proc = proc_root.rstrip("/") or "/"
        self._cgroup_root = cgroup_root
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tcp_events: set[str] = set()  # containers whose TCP comes to on_tcp

    def watch(self, container: ContainerInfo) -> None:
        with self._lock:
            current = self._watched.get(container.id)
            if current is None:
                self._watched[container.id] = _Watched(container)
            else:  # a restart gives a new pid; what was reported stays reported
                current.info = container

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            self._watched.pop(container_id, None)
            self._tcp_events.discard(container_id)

    def watched(self) -> list[str]:
        with self._lock:
            return list(self._watched)

    def start(self) -> NetworkSensor:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="network-sensor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling: one bad poll must not end the sensor
                self.counters.errors += 1
                log.exception("network poll failed")
            self._stop.wait(self.interval)

    def poll_once(self) -> list[NetEvent]:
        """Read every watched namespace once; send and return what is new."""
        with self._lock:
            members = list(self._watched.values())
        found: list[NetEvent] = []
        for namespace in self._namespaces(members).values():
            found.extend(self._poll_namespace(namespace))
        self.counters.extra["polls"] = self.counters.extra.get("polls", 0) + 1
        for event in found:
            self._emit(event)
        return found

    def _namespaces(self, members: list[_Watched]) -> dict[str, _Namespace]:
        """Watched containers grouped by network namespace (shared by pods, --network=…)."""
        # The host's namespace: init's, and the defender's own (it runs on the host network;
        # init's may be unreadable, as ptrace rules guard it).
        hosts = {self._netns("1"), self._netns("self")}
        groups: dict[str, _Namespace] = {}
        for member in members:
            for pid in self._candidate_pids(member):
                netns = self._netns(str(pid))
                if netns is not None:
                    group = groups.setdefault(netns, _Namespace(pid, [], netns in hosts))
                    group.members.append(member)
                    break
        return groups

    def _candidate_pids(self, member: _Watched) -> Iterable[int]:
        if member.info.pid:
            yield member.info.pid
        yield from container_pids(member.info.id, self._cgroup_root, layout=self._layout)

    def _netns(self, pid: str) -> str | None:
        # readlink ("net:[4026531833]"), not stat: stat follows the link, which needs more.
        try:
            return os.readlink(f"{self._proc}/{pid}/ns/net")
        except OSError:
            return None

    def tcp_events(self, container_id: str) -> None:
        """This container's TCP listens and connects will come to :meth:`on_tcp`: its TCP
        tables need reading only once."""
        with self._lock:
            self._tcp_events.add(container_id)

    def on_tcp(self, event: NetEvent) -> None:
        """A TCP socket of a watched container started listening or connecting, seen as it
        happened (``tcp_events``); reported once per port or remote end, like a poll's."""
        with self._lock:
            member = self._watched.get(event.container_id)
            if member is None:
                return
            key = event_key(event.kind, event)
            if key in member.reported:
                return
            member.reported.add(key)
            if event.kind == "listen":
                member.listen_ports.add(event.local_port)
        path = self._exe(event.pid) if event.pid else ""
        self._emit(dataclasses.replace(event, process_path=path))

    def _poll_namespace(self, namespace: _Namespace) -> list[NetEvent]:
        tcp = not all(m.tcp_read and m.info.id in self._tcp_events for m in namespace.members)
        entries = self._read_sockets(namespace.pid, tcp)
        for member in namespace.members:
            member.tcp_read = True
        ports = listening_ports(entries)
        candidates: list[tuple[_Watched, NetKind, SocketEntry]] = []
        for member in namespace.members:
            member.listen_ports |= ports
            candidates.extend((member, *found) for found in self._new(member, entries))
        if not candidates:
            return []
        owners = self._owners(namespace.members)
        return [
            event
            for member, kind, entry in candidates
            if (event := self._attribute(namespace, member, kind, entry, owners)) is not None
        ]

    def _read_sockets(self, pid: int, tcp: bool = True) -> list[SocketEntry]:
        entries: list[SocketEntry] = []
        for name, protocol in PROC_NET_FILES:
            if protocol == "tcp" and not tcp:
                continue
            try:
                with open(f"{self._proc}/{pid}/net/{name}", "rb") as f:
                    entries.extend(parse_proc_net(f.read(), protocol))
            except OSError:  # no IPv6 in the kernel, or the process just exited
                continue
        return entries

    def _new(
        self, member: _Watched, entries: list[SocketEntry]
    ) -> Iterable[tuple[NetKind, SocketEntry]]:
        for entry in entries:
            kind = classify(entry, member.listen_ports)
            if kind is None or entry.inode in member.foreign_inodes:
                continue
            if event_key(kind, entry) not in member.reported:
                yield kind, entry

    def _owners(self, members: list[_Watched]) -> dict[int, tuple[int, str]]:
        """socket inode → (pid, container id) over every process of these containers."""
        owners: dict[int, tuple[int, str]] = {}
        for member in members:
            for pid in container_pids(member.info.id, self._cgroup_root, layout=self._layout):
                for inode in self._socket_inodes(pid):
                    owners.setdefault(inode, (pid, member.info.id))
        return owners

    def _socket_inodes(self, pid: int) -> list[int]:
        fd_dir = f"{self._proc}/{pid}/fd"
        inodes = []
        try:
            names = os.listdir(fd_dir)
        except OSError:  # gone, or a kernel thread
            return []
        for name in names:
            try:
                target = os.readlink(f"{fd_dir}/{name}")
            except OSError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.append(int(target[8:-1]))
        return inodes

    def _attribute(
        self,
        namespace: _Namespace,
        member: _Watched,
        kind: NetKind,
        entry: SocketEntry,
        owners: dict[int, tuple[int, str]],
    ) -> NetEvent | None:
        """The event for ``member``, or None when the socket is another container's (or
        the host's, for a container on the host network)."""
        key = event_key(kind, entry)
        owner = owners.get(entry.inode) if entry.inode else None
        mine = owner[1] == member.info.id if owner else not namespace.is_host
        if not mine:
            member.foreign_inodes.add(entry.inode)
            self.counters.extra["foreign"] = self.counters.extra.get("foreign", 0) + 1
            return None
        if key in member.reported:  # the same port on IPv4 and IPv6, in one poll
            return None
        member.reported.add(key)
        pid = owner[0] if owner else None
        return NetEvent(
            container_id=member.info.id,
            kind=kind,
            protocol=entry.protocol,
            local_ip=entry.local_ip,
            local_port=entry.local_port,
            remote_ip=entry.remote_ip if kind == "connect" else "",
            remote_port=entry.remote_port if kind == "connect" else 0,
            pid=pid,
            process_path=self._exe(pid) if pid else "",
            time=time.time(),
        )

    def _exe(self, pid: int) -> str:
        try:  # the link names the file as the process's own mount namespace sees it
            return os.readlink(f"{self._proc}/{pid}/exe")
        except OSError:
            return ""

    def _emit(self, event: NetEvent) -> None:
        self.counters.events += 1
        try:
            self.sink(event)
        except Exception:
            self.counters.errors += 1
            log.exception("network sink failed on %s", event)
