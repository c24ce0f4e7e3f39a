"""What a model has learned: processes, network and written paths, with O(1) lookups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from garrison.model.paths import WrittenPaths
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent

# Per-process sets stop growing here: a model is a summary, not a log.
MAX_PER_PROCESS = 16
# Past this many outbound addresses, the model stops telling addresses apart (a client of
# many servers): only outbound ports are then checked.
MAX_ADDRESSES = 64

Port = tuple[str, int]  # ("tcp", 80)


@dataclass(slots=True)
class ProcessEntry:
    """One executable seen in the image's containers."""

    path: str
    command: str  # a sample command line: the first seen
    first_seen: float
    last_seen: float
    count: int = 0
    parents: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)

    def add(self, event: ProcessEvent) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen, event.time)
        self.last_seen = max(self.last_seen, event.time)
        _add_capped(self.parents, event.parent_path)
        _add_capped(self.users, event.user)

    def to_doc(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "parents": sorted(self.parents),
            "users": sorted(self.users),
            "command": self.command,
            "count": self.count,
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ProcessEntry:
        return cls(
            path=str(doc["path"]),
            command=str(doc["command"]),
            first_seen=float(doc["firstSeen"]),
            last_seen=float(doc["lastSeen"]),
            count=int(doc["count"]),
            parents={str(p) for p in doc["parents"]},
            users={str(u) for u in doc["users"]},
        )


def _add_capped(values: set[str], value: str) -> None:
    if value and len(values) < MAX_PER_PROCESS:
        values.add(value)


@dataclass(slots=True)
class Contents:
    """The learned part of a model. ``learn_*`` return True when something new was learned."""

    processes: dict[str, ProcessEntry] = field(default_factory=dict)
    listening: set[Port] = field(default_factory=set)
    outbound_ports: set[Port] = field(default_factory=set)
    outbound_addresses: set[str] = field(default_factory=set)
    any_outbound_address: bool = False
    written: WrittenPaths = field(default_factory=WrittenPaths)

    def knows_process(self, path: str) -> bool:
        return path in self.processes

    def knows_listening(self, protocol: str, port: int) -> bool:
        return (protocol, port) in self.listening

    def knows_outbound_port(self, protocol: str, port: int) -> bool:
        return (protocol, port) in self.outbound_ports

    def knows_outbound_address(self, address: str) -> bool:
        return self.any_outbound_address or address in self.outbound_addresses

    def knows_write(self, path: str) -> bool:
        return self.written.covers(path)

    def learn_process(self, event: ProcessEvent) -> bool:
        entry = self.processes.get(event.path)
        if entry is None:
            entry = ProcessEntry(event.path, event.command, event.time, event.time)
            self.processes[event.path] = entry
        entry.add(event)
        return entry.count == 1

    def learn_net(self, event: NetEvent) -> bool:
        if event.kind == "listen":
            return _add_new(self.listening, (event.protocol, event.local_port))
        new_port = _add_new(self.outbound_ports, (event.protocol, event.remote_port))
        return self._learn_address(event.remote_ip) or new_port

    def _learn_address(self, address: str) -> bool:
        if self.any_outbound_address or not address or address in self.outbound_addresses:
            return False
        if len(self.outbound_addresses) >= MAX_ADDRESSES:
            self.any_outbound_address = True
            self.outbound_addresses.clear()
        else:
            self.outbound_addresses.add(address)
        return True

    def learn_file(self, event: FileEvent) -> bool:
        return self.written.learn(event.path)

    def to_doc(self) -> dict[str, Any]:
        return {
            "processes": [self.processes[p].to_doc() for p in sorted(self.processes)],
            "listening": _ports_doc(self.listening),
            "outboundPorts": _ports_doc(self.outbound_ports),
            "outboundAddresses": sorted(self.outbound_addresses),
            "anyOutboundAddress": self.any_outbound_address,
            "writtenPaths": list(self.written),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Contents:
        entries = (ProcessEntry.from_doc(p) for p in doc["processes"])
        return cls(
            processes={e.path: e for e in entries},
            listening=_ports_from(doc["listening"]),
            outbound_ports=_ports_from(doc["outboundPorts"]),
            outbound_addresses={str(a) for a in doc["outboundAddresses"]},
            any_outbound_address=bool(doc["anyOutboundAddress"]),
            written=WrittenPaths(str(p) for p in doc["writtenPaths"]),
        )


def _add_new(values: set[Port], value: Port) -> bool:
    if value in values:
        return False
    values.add(value)
    return True


def _ports_doc(ports: set[Port]) -> list[dict[str, Any]]:
    return [{"protocol": proto, "port": port} for proto, port in sorted(ports)]


def _ports_from(docs: list[dict[str, Any]]) -> set[Port]:
    return {(str(d["protocol"]), int(d["port"])) for d in docs}
