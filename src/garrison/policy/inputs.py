"""What evaluation needs besides the event: the container's model and facts the sensors add.

``ModelView`` is all the policy asks of a runtime model (garrison.model implements it);
``StaticModel`` is a fake of it, in memory, for tests and for a container with no model yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ACTIVE = "active"  # the only model state in which anomalies are findings


class ModelView(Protocol):
    """Lookups answered from memory, at once: evaluation runs in the fanotify permission path."""

    @property
    def state(self) -> str:
        """One of "learning", "active", "archived" (a ``str`` enum is fine)."""
        ...

    def knows_process(self, path: str, file: str = "") -> bool:
        """Was ``path`` learned, or the file ``file`` (an exec's ``file_identity``; "" none)
        under any name?"""
        ...

    def knows_parent(self, path: str, parent: str, file: str = "") -> bool:
        """Was ``path`` (or a name of the file ``file``) seen started by the executable
        ``parent``?"""
        ...

    def knows_listening(self, protocol: str, port: int) -> bool: ...

    def knows_outbound_port(self, protocol: str, port: int) -> bool: ...

    def knows_outbound_address(self, address: str) -> bool: ...

    def knows_write(self, path: str) -> bool: ...


@dataclass(frozen=True)
class StaticModel:
    """A model given by its contents: the fake beside the real one."""

    state: str = "learning"
    processes: frozenset[str] = frozenset()
    files: frozenset[str] = frozenset()  # files really executed, under any name
    parents: frozenset[tuple[str, str]] = frozenset()  # (path, parent path)
    listening: frozenset[tuple[str, int]] = frozenset()  # (protocol, port)
    outbound_ports: frozenset[tuple[str, int]] = frozenset()
    outbound_addresses: frozenset[str] = frozenset()
    written: frozenset[str] = frozenset()  # directories; a write anywhere below is known

    def knows_process(self, path: str, file: str = "") -> bool:
        return path in self.processes or (bool(file) and file in self.files)

    def knows_parent(self, path: str, parent: str, file: str = "") -> bool:
        return (path, parent) in self.parents

    def knows_listening(self, protocol: str, port: int) -> bool:
        return (protocol, port) in self.listening

    def knows_outbound_port(self, protocol: str, port: int) -> bool:
        return (protocol, port) in self.outbound_ports

    def knows_outbound_address(self, address: str) -> bool:
        return address in self.outbound_addresses

    def knows_write(self, path: str) -> bool:
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in self.written)


NO_MODEL = StaticModel()  # a container whose image has no model yet: learning, knows nothing


@dataclass(frozen=True, slots=True)
class ExecFacts:
    """Facts about an exec that ``ProcessEvent`` does not carry (yet).

    - ``stdio_socket``: fd 0 or fd 1 of the process is a socket. The sensor reads
      ``readlink /proc/PID/fd/0`` and ``/1``; a socket reads ``socket:[INODE]``.
    - ``file_mode``: ``st_mode`` of the file executed; the sensor has its fanotify event fd
      open, so one ``os.fstat(fd)`` gives it without a path lookup. ``None`` when unknown.
    - ``drifted``: the file was created or modified after the container started (the defender
      knows from the file events it saw for this container, or from the overlay upper dir).
    - ``pty_driver``: the process's terminal is a pty whose other end (``/dev/ptmx``) a process
      of the container holds together with a network socket — the pid of that process, the
      "upgraded" reverse shell (``pty.spawn``, ``socat … pty``, ``script``); 0 when not.
    """

    stdio_socket: bool = False
    pty_driver: int = 0
    file_mode: int | None = None
    drifted: bool = False


@dataclass(frozen=True, slots=True)
class FileFacts:
    """Facts about a write that ``FileEvent`` does not carry (yet).

    - ``is_elf``: the file starts with ``\\x7fELF`` (read after the write is closed; at open
      time, before anything is written, it is unknown and False).
    """

    is_elf: bool = False
