"""Per-process readers over one configurable ``/proc`` root, for the fanotify sensors.

Everything a permission event needs while its process waits in the kernel: the file name and
argv it passed to execve (from ``/proc/PID/syscall`` and ``/proc/PID/mem``, as proc(5)
describes them), its uid and thread group, its parent, the parent's executable, its cwd and
its container (``/proc/PID/cgroup``). Parsers are pure functions over the bytes the kernel
gives; :class:`ProcFS` only opens files. A process that exits mid-read raises
:class:`garrison.errors.ProcessGone`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import time
from dataclasses import dataclass

from garrison.errors import GarrisonError, ProcessGone, SensorError
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout

SYS_EXECVE = 59  # x86_64 syscall numbers, as /proc/PID/syscall prints them
SYS_EXECVEAT = 322
SYS_OPEN = 2
SYS_CREAT = 85
SYS_OPENAT = 257
SYS_OPENAT2 = 437
WRITE_INTENT = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
AT_FDCWD = -100
# How long a task that has just raised a permission event may take to go to sleep: on a
# loaded machine it may be preempted first and wait for a CPU (5 ms was once too short with
# four exec loops on two cores). Every other permission event waits meanwhile, so not long.
RUNNING_PATIENCE = 0.02
RUNNING_SPIN = 0.001
RUNNING_NAP = 0.0002
AT_EMPTY_PATH = 0x1000
MAX_ARGS = 256  # argv beyond this is cut: a record, not a copy of the process
MAX_STRING = 4096  # PATH_MAX; also the longest argument kept
_CHUNK = 256
_SPAN_MAX = 16384

_GONE_ERRNOS = frozenset({errno.ENOENT, errno.ESRCH, errno.EIO, errno.ENXIO, errno.EFAULT})


@dataclass(frozen=True, slots=True)
class Syscall:
    """The system call a blocked task is in: ``nr`` and its six arguments."""

    nr: int
    args: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ProcStatus:
    """The fields of ``/proc/PID/status`` the sensors use."""

    name: str
    tgid: int
    ppid: int
    uid: int  # the real uid: who ran it, before any setuid bit of the new program applies


class NotAsleep(GarrisonError):
    """A task that raised a permission event is still on (or waiting for) a CPU: what it
    asked for cannot be read from /proc/TID/syscall yet."""

    def __init__(self, pid: int) -> None:
        super().__init__(f"task {pid} did not go to sleep in time")
        self.pid = pid


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """What a process asked execve()/execveat() for, before the kernel resolved anything."""

    filename: str  # as passed: may be relative, or "" with AT_EMPTY_PATH
    argv: tuple[str, ...]
    dirfd: int = AT_FDCWD
    flags: int = 0
    args_unread: bool = False  # argv could not be read: ``argv`` is empty


def parse_syscall(raw: bytes) -> Syscall | None:
    """``59 0x7f.. 0x7f.. ...`` → Syscall; None for ``running`` or a task not in a call."""
    fields = raw.split()
    if len(fields) < 7 or not fields[0].lstrip(b"-").isdigit():
        return None
    nr = int(fields[0])
    if nr < 0:
        return None
    return Syscall(nr, tuple(int(f, 16) for f in fields[1:7]))


def parse_status(raw: bytes) -> ProcStatus:
    """The name, tgid, ppid and real uid of ``/proc/PID/status`` (on the verdict path: a
    find per field is several times faster than splitting the ~55 lines)."""
    return ProcStatus(
        name=os.fsdecode(_status_field(raw, b"Name:")),
        tgid=int(_status_field(raw, b"\nTgid:")),
        ppid=int(_status_field(raw, b"\nPPid:")),
        uid=int(_status_field(raw, b"\nUid:").split(None, 1)[0]),
    )


def _status_field(raw: bytes, key: bytes) -> bytes:
    start = raw.find(key)
    if start < 0:
        raise ValueError(f"/proc status has no {key.strip().decode()!r} line")
    start += len(key)
    end = raw.find(b"\n", start)
    return raw[start : end if end >= 0 else len(raw)].strip()


def parse_stat_ppid(raw: bytes) -> int:
    """The parent pid of ``/proc/PID/stat`` (after the last ')': comm may hold any byte)."""
    return int(raw[raw.rindex(b")") + 2 :].split(maxsplit=2)[1])


def parse_container_id(raw: bytes, layout: CgroupLayout = DOCKER_LAYOUT) -> str | None:
    """The id of the container ``/proc/PID/cgroup`` names (cgroup v1 and v2) in ``layout``
    (Docker's by default); None on the host or in another runtime's container."""
    return layout.container_id(raw)


def exec_call(call: Syscall) -> tuple[int, int, int, int] | None:
    """(dirfd, filename address, argv address, flags) of an execve or execveat, else None."""
    if call.nr == SYS_EXECVE:
        return AT_FDCWD, call.args[0], call.args[1], 0
    if call.nr == SYS_EXECVEAT:
        dirfd = int.from_bytes(call.args[0].to_bytes(8, "little")[:4], "little", signed=True)
        return dirfd, call.args[1], call.args[2], call.args[4]
    return None


def open_flags(call: Syscall) -> int | None:
    """The flags of an open(), creat() or openat(); None for openat2 (its flags are in
    memory: see ProcFS.open_flags) and for any other call."""
    if call.nr == SYS_OPENAT:
        return call.args[2]
    if call.nr == SYS_OPEN:
        return call.args[1]
    if call.nr == SYS_CREAT:
        return os.O_CREAT | os.O_WRONLY | os.O_TRUNC
    return None


def has_write_intent(flags: int) -> bool:
    """Opened for writing, truncating or creating: what a file prevent rule must see."""
    return bool(flags & WRITE_INTENT)


class ProcFS:
    """Readers of one ``/proc`` tree (``root``): the host's, or a mounted copy in a test."""

    def __init__(self, root: str = "/proc") -> None:
        self.root = root.rstrip("/") or "/"

    def path(self, pid: int, name: str) -> str:
        return f"{self.root}/{pid}/{name}"

    def read(self, pid: int, name: str) -> bytes:
        """The whole of ``/proc/PID/name`` in one read; ProcessGone when the pid is gone."""
        try:
            fd = os.open(self.path(pid, name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise _gone(pid, exc) from exc
        try:
            return os.read(fd, 65536)
        except OSError as exc:
            raise _gone(pid, exc) from exc
        finally:
            os.close(fd)

    def readlink(self, pid: int, name: str) -> str:
        """``exe``, ``cwd``, ``fd/N``: the path as the process's own mount namespace names it."""
        try:
            return os.readlink(self.path(pid, name))
        except OSError as exc:
            raise _gone(pid, exc) from exc

    def syscall(self, pid: int) -> Syscall | None:
        return parse_syscall(self.read(pid, "syscall"))

    def waiting_syscall(self, pid: int, patience: float = RUNNING_PATIENCE) -> Syscall | None:
        """The call a task waiting in the kernel for us (a permission event) is in.

        The kernel queues the event, wakes the listener, and only then puts the task to
        sleep: read in between, ``syscall`` says ``running`` (task_current_syscall() needs
        the task off the CPU). Such a task is about to block, so it is read again (yielding
        the CPU, then napping) for up to ``patience`` seconds, then NotAsleep (a task held
        off the CPU: a CPU-throttled cgroup, a starved machine). None for a task in no call.
        """
        raw = self.read(pid, "syscall")
        if raw.startswith(b"running"):
            start = time.monotonic()
            while raw.startswith(b"running") and (waited := time.monotonic() - start) < patience:
                # A task preempted on its way to sleep may wait its turn on a busy CPU: yield
                # at first, then nap rather than spin.
                if waited < RUNNING_SPIN:
                    os.sched_yield()
                else:
                    time.sleep(RUNNING_NAP)
                raw = self.read(pid, "syscall")
            if raw.startswith(b"running"):
                raise NotAsleep(pid)
        return parse_syscall(raw)

    def status(self, pid: int) -> ProcStatus:
        return parse_status(self.read(pid, "status"))

    def capabilities_bounding(self, pid: int) -> int | None:
        """``CapBnd`` of ``/proc/PID/status`` (capabilities(7)): what the process and its
        children can ever hold; None when the kernel does not say."""
        try:
            return int(_status_field(self.read(pid, "status"), b"\nCapBnd:"), 16)
        except ValueError:
            return None

    def ppid(self, pid: int) -> int:
        return parse_stat_ppid(self.read(pid, "stat"))

    def exe(self, pid: int) -> str:
        return self.readlink(pid, "exe")

    def cwd(self, pid: int) -> str:
        return self.readlink(pid, "cwd")

    def container_id(self, pid: int, layout: CgroupLayout = DOCKER_LAYOUT) -> str | None:
        return layout.container_id(self.read(pid, "cgroup"))

    def exec_request(self, pid: int, call: Syscall | None = None) -> ExecRequest | None:
        """The file name and argv of a task waiting in execve/execveat, else None."""
        call = call if call is not None else self.syscall(pid)
        found = exec_call(call) if call is not None else None
        if found is None:
            return None
        dirfd, filename_addr, argv_addr, flags = found
        with ProcessMemory(self, pid) as mem:
            filename = mem.string(filename_addr)
            try:
                argv = mem.argv(argv_addr)
            except ProcessGone:
                # An unreadable argv alone is no reason to drop the exec (a process really
                # gone fails the next read); it is judged on what is known.
                return ExecRequest(filename, (), dirfd, flags, args_unread=True)
            return ExecRequest(filename, argv, dirfd, flags)

    def open_flags(self, pid: int, call: Syscall) -> int | None:
        """The flags of the open a task waits in (openat2's from its struct open_how)."""
        if call.nr != SYS_OPENAT2:
            return open_flags(call)
        with ProcessMemory(self, pid) as mem:
            return int(struct.unpack("=Q", mem.pread(call.args[2], 8))[0])

    def exec_path(self, pid: int, request: ExecRequest) -> str:
        """The absolute name asked for: relative names joined to the cwd or the dirfd."""
        name = request.filename
        if name.startswith("/"):
            return os.path.normpath(name)
        if request.dirfd == AT_FDCWD:
            base = self.cwd(pid)
        else:
            base = self.readlink(pid, f"fd/{request.dirfd}")
        if not name and request.flags & AT_EMPTY_PATH:
            return base
        return os.path.normpath(os.path.join(base, name))


class ProcessMemory:
    """``/proc/PID/mem`` of a stopped-in-syscall process: C strings and pointer arrays."""

    def __init__(self, procfs: ProcFS, pid: int) -> None:
        self.pid = pid
        try:
            self.fd = os.open(procfs.path(pid, "mem"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise _gone(pid, exc) from exc

    def __enter__(self) -> ProcessMemory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)

    def pread(self, addr: int, size: int) -> bytes:
        try:
            data = os.pread(self.fd, size, addr)
        except OSError as exc:
            raise _gone(self.pid, exc) from exc
        if not data:  # the address space is gone: the process exited
            raise ProcessGone(self.pid)
        return data

    def string(self, addr: int, limit: int = MAX_STRING) -> str:
        """The NUL-terminated string at ``addr`` (cut at ``limit`` bytes)."""
        return os.fsdecode(self.cstring(addr, limit))

    def cstring(self, addr: int, limit: int = MAX_STRING) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < limit:
            # Never read across a page end in one go: the next page may be unmapped.
            size = min(_CHUNK, 4096 - (addr + got) % 4096, limit - got)
            chunk = self.pread(addr + got, size)
            end = chunk.find(b"\0")
            if end >= 0:
                parts.append(chunk[:end])
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def pointers(self, addr: int, limit: int = MAX_ARGS) -> list[int]:
        """The NULL-terminated array of pointers at ``addr`` (argv, envp)."""
        found: list[int] = []
        while len(found) < limit:
            size = max(8, min(128, 4096 - addr % 4096) // 8 * 8)
            chunk = self.pread(addr, size)
            for (word,) in struct.iter_unpack("=Q", chunk[: len(chunk) // 8 * 8]):
                if word == 0 or len(found) >= limit:
                    return found
                found.append(word)
            addr += len(chunk) // 8 * 8
        return found

    def argv(self, addr: int) -> tuple[str, ...]:
        """The strings of the argv array at ``addr``, usually read in one go."""
        if addr == 0:
            return ()
        ptrs = self.pointers(addr)
        if not ptrs:
            return ()
        span = self._span(ptrs)
        return tuple(os.fsdecode(self._from_span(span, ptrs[0], ptr)) for ptr in ptrs)

    def _span(self, ptrs: list[int]) -> bytes:
        # Arguments are mostly packed one after the other (a shell, libc's posix_spawn): one
        # read covers them all. A short read stops at the end of the mapping.
        low, high = min(ptrs), max(ptrs)
        if low != ptrs[0] or high - low > _SPAN_MAX:
            return b""
        with contextlib.suppress(ProcessGone):
            return self.pread(low, high - low + _CHUNK)
        return b""

    def _from_span(self, span: bytes, base: int, ptr: int) -> bytes:
        start = ptr - base
        end = span.find(b"\0", start) if 0 <= start < len(span) else -1
        return span[start:end] if end >= 0 else self.cstring(ptr)


def _gone(pid: int, exc: OSError) -> GarrisonError:
    if exc.errno in _GONE_ERRNOS:
        return ProcessGone(pid, f"process {pid} is gone ({exc.strerror})")
    return SensorError(f"cannot read {exc.filename or f'/proc/{pid}'}: {exc.strerror}")
