"""The events sensors produce and the defender consumes: the contract between them.

Paths are always as the container sees them (``/usr/bin/nc``), never host paths.
Times are ``time.time()`` seconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Literal, Protocol

from garrison.sensors.multicall import is_multicall

ProcessSource = Literal["fanotify", "proc_connector"]


class Verdict(enum.Enum):
    """The answer to a permission event."""

    ALLOW = "allow"
    DENY = "deny"
    # Allow, and let the kernel skip this file from now on (a fanotify ignore mark on its
    # inode, dropped by the kernel when the file is modified). Only for a file every exec of
    # which would be allowed, whatever its name, arguments, user or parent.
    ALLOW_ALWAYS = "allow_always"


@dataclass(frozen=True, slots=True)
class ProcessEvent:
    """One exec in a container."""

    container_id: str
    pid: int
    ppid: int
    path: str  # the file name the caller asked for: "/bin/nc", not "/bin/busybox"
    argv: tuple[str, ...]
    uid: int
    user: str  # from the container's own /etc/passwd; str(uid) when unknown
    parent_path: str  # the parent's executable, as the container sees it; "" when unknown
    time: float
    source: ProcessSource = "fanotify"
    resolved_path: str = ""  # the file really executed ("/bin/busybox"), when known
    file_mode: int | None = None  # st_mode of the file executed, when known (setuid checks)
    # argv could not be read (the caller held off the CPU, its memory unreadable): ``argv`` is
    # empty and, for a multi-call binary, ``path`` names the binary, not the applet.
    args_unread: bool = False
    # The file run has no link left on any file system: a memfd, a deleted file (``path``
    # then names the memfd, ``/memfd:NAME``, or the file as it was).
    fileless: bool = False
    sha256: str = ""  # of a fileless program's bytes, when they could be read
    size: int | None = None  # of a fileless program, in bytes
    loader: str = ""  # the dynamic loader that ran ``path`` by hand (``ld.so /tmp/x``)
    # Refused in the kernel before its first instruction (the BPF source kills it at exec).
    killed: bool = False

    @property
    def command(self) -> str:
        return " ".join(self.argv) if self.argv else self.path

    @property
    def file_identity(self) -> str:
        """The file that stands for this exec's program, so that two names of one file
        (``/bin/sh`` and ``/usr/bin/dash``) are one program; "" when the file does not say
        which program runs: a multi-call binary runs the applet its name chooses (``/bin/ls``
        and ``/bin/nc`` are both ``/bin/busybox``) — unless that name is unknown (``args_unread``),
        and then the file is all that is known."""
        resolved = self.resolved_path
        if not resolved or (is_multicall(resolved) and not self.args_unread):
            return ""
        return resolved


FileKind = Literal["write", "create", "delete"]


@dataclass(frozen=True, slots=True)
class FileEvent:
    """A file written or created in a container."""

    container_id: str
    path: str
    kind: FileKind
    pid: int
    process_path: str  # the writer's executable, "" when unknown
    time: float
    via: str = ""  # the hard link written through, when ``path`` is another name of the file


RefusedOp = Literal["open", "create", "delete", "truncate", "attrs"]  # attrs: chmod, chown


@dataclass(frozen=True, slots=True)
class RefusedWrite:
    """A call the kernel refused with EROFS (or EXDEV) in a container that has read-only
    paths: the raw record, before its path is resolved and judged."""

    container_id: str
    pid: int  # the thread that called
    tgid: int
    path: str  # as asked for: relative to ``dfd`` (AT_FDCWD: the working directory)
    dfd: int
    op: RefusedOp
    flags: int  # open flags
    error: int  # errno: 30 EROFS, 18 EXDEV
    time: float
    exe: str = ""  # the caller's executable, read in the kernel ("" unknown)
    cwd: str | None = None  # its working directory, when the kernel could name it


NetKind = Literal["listen", "connect"]


@dataclass(frozen=True, slots=True)
class NetEvent:
    """A listening socket or an outbound connection seen in a container's network namespace."""

    container_id: str
    kind: NetKind
    protocol: Literal["tcp", "udp"]
    local_ip: str
    local_port: int
    remote_ip: str = ""  # "" for listen
    remote_port: int = 0
    pid: int | None = None
    process_path: str = ""
    time: float = 0.0


@dataclass(slots=True)
class SensorCounters:
    """Per-sensor health, shown by ``garrison status``."""

    events: int = 0
    drops: int = 0  # events the kernel or a full queue lost
    late: int = 0  # events whose process was gone before it could be read
    errors: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class ExecJudge(Protocol):
    """Answers a permission event from memory, at once: never waits on I/O."""

    def __call__(self, event: ProcessEvent) -> Verdict: ...


class ExecAdmit(Protocol):
    """Called first for every exec to judge: could its verdict refuse it? False lets the
    exec go on before the judge runs (the judge still runs, right after)."""

    def __call__(self, event: ProcessEvent) -> bool: ...
