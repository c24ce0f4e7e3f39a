"""What a model has learned: processes, network and written paths, with O(1) lookups.

Processes are keyed by the name they were run by and indexed by the file really executed
(``ProcessEvent.file_identity``): on Debian ``/bin/sh`` and ``/usr/bin/dash`` are one file,
and a name the model never saw is still known when it reaches a learned file. A multi-call
binary (busybox) is no identity: the name chooses the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from garrison.model.paths import WrittenPaths
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent
from garrison.sensors.multicall import is_multicall

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
    files: set[str] = field(default_factory=set)  # the files really executed under this name

    def add(self, event: ProcessEvent) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen, event.time)
        self.last_seen = max(self.last_seen, event.time)
        _add_capped(self.parents, event.parent_path)
        _add_capped(self.users, event.user)
        _add_capped(self.files, event.resolved_path)

    def to_doc(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "files": sorted(self.files),
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
            files={str(f) for f in doc.get("files", ())},  # absent in older documents
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
    # file really executed → the learned names that ran it (an index of ProcessEntry.files)
    by_file: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.processes.values():
            self._index(entry)

    def knows_process(self, path: str, file: str = "") -> bool:
        """Was ``path`` learned, or (``file``: the exec's ``file_identity``) the file it runs?"""
        return path in self.processes or (bool(file) and file in self.by_file)

    def process_names(self) -> frozenset[str]:
        """Every name a learned program was run by, and every file it really was."""
        return frozenset(self.processes) | frozenset(self.by_file)

    def knows_parent(self, path: str, parent: str, file: str = "") -> bool:
        """Was ``path`` (or another name of ``file``) seen started by ``parent``?"""
        entry = self.processes.get(path)
        if entry is not None and parent in entry.parents:
            return True
        names = self.by_file.get(file, ()) if file else ()
        return any(parent in self.processes[n].parents for n in names)

    def knows_listening(self, protocol: str, port: int) -> bool:
        return (protocol, port) in self.listening

    def knows_outbound_port(self, protocol: str, port: int) -> bool:
        return (protocol, port) in self.outbound_ports

    def knows_outbound_address(self, address: str) -> bool:
        return self.any_outbound_address or address in self.outbound_addresses

    def knows_write(self, path: str) -> bool:
        return self.written.covers(path)

    def learn_process(self, event: ProcessEvent) -> bool:
        if event.args_unread and is_multicall(event.path):
            return False  # the applet run is unknown: nothing to learn of its name
        entry = self.processes.get(event.path)
        if entry is None:
            entry = ProcessEntry(event.path, event.command, event.time, event.time)
            self.processes[event.path] = entry
        files = len(entry.files)
        entry.add(event)
        new_file = len(entry.files) > files
        if new_file:
            self._index(entry)
        return entry.count == 1 or new_file

    def _index(self, entry: ProcessEntry) -> None:
        for file in entry.files:
            names = self.by_file.setdefault(file, [])
            if entry.path not in names:
                names.append(entry.path)

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
