"""The process trees of watched containers, and the execs the fanotify sensor cannot see.

A :class:`ProcessTracker` listens to a :class:`~garrison.sensors.proc_connector.ProcConnector`.
A fork from a tracked process adds the child without reading /proc (so even a process gone
a moment later is placed in its container); an exec of an untracked pid reads
``/proc/PID/cgroup`` once to learn its container. The fanotify exec sensor marks each
container's overlay file system only, so a binary on a volume or bind mount is seen here
alone (../shared/notes/kernel.md): those execs become :class:`ProcessEvent` with
``source="proc_connector"``, read from /proc after the fact. A process gone before it could be
read counts as ``late``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from garrison.errors import ProcessGone, SensorError
from garrison.sensors.bpf.proc_events import kernel_dev
from garrison.sensors.cgroup import CGROUP_ROOT, container_of_pid, container_pids
from garrison.sensors.cgroup_layout import DOCKER_LAYOUT, CgroupLayout
from garrison.sensors.events import ProcessEvent, SensorCounters
from garrison.sensors.parents import ParentPaths
from garrison.sensors.passwd import UserNames
from garrison.sensors.proc_connector import ExecEvent, ExecRecord, ExitEvent, ForkEvent, ProcEvent
from garrison.sensors.procfs import ProcFS
from garrison.sensors.program import (
    DELETED,
    absolute,
    applet_program,
    fileless_name,
    is_loader,
    loader_target,
    sha256_of_path,
)

# runc (1.1) runs itself from a memfd copy of its binary: ``runc init`` reads this exe.
RUNC_CLONE = "/memfd:runc_cloned:"
MAX_CLAIMS = 8  # the exec sensor's claims for one pid looked through for an exec's file


@dataclass(slots=True)
class TrackedProcess:
    """One process of a watched container, as the tracker knows it."""

    pid: int
    ppid: int
    container_id: str
    exe: str = ""  # as the container sees it; "" until read (a fork runs its parent's exe)


@dataclass(frozen=True, slots=True)
class ProcessExit:
    container_id: str
    pid: int
    ppid: int
    path: str
    code: int
    signal: int
    time: float


class ProcessTracker:
    """Process trees of watched containers, fed by a :class:`ProcConnector`.

    For every exec in a watched container it calls ``on_exec`` with the process (its ``exe``
    "" when it was gone before it could be read). Unless ``already_seen(container_id, pid,
    exe)`` (supplied by the defender) says that exec needs no report, it also sends a
    :class:`ProcessEvent` to ``sink``: in practice, binaries outside the root file system.
    Exits go to ``on_exit``. Everything runs on the connector's thread: callbacks must not
    block, and the nodes handed out must be treated as read-only.
    """

    def __init__(
        self,
        sink: Callable[[ProcessEvent], None],
        already_seen: Callable[[str, int, str], bool] = lambda container, pid, exe: False,
        claim: Callable[[int], str | None] = lambda pid: None,
        *,
        on_exec: Callable[[TrackedProcess], None] | None = None,
        on_exit: Callable[[ProcessExit], None] | None = None,
        proc_root: str = "/proc",
        cgroup_root: str = CGROUP_ROOT,
        layout: CgroupLayout = DOCKER_LAYOUT,
    ) -> None:
        self.sink, self.already_seen, self.claim = sink, already_seen, claim
        self._layout = layout  # where the runtime puts its containers' cgroups
        self.on_exec, self.on_exit = on_exec, on_exit
        self.counters = SensorCounters()
        self._proc = ProcFS(proc_root)
        self._cgroup_root = cgroup_root
        self._tree: dict[int, TrackedProcess] = {}
        self._watched: set[str] = set()
        self._users: dict[str, UserNames] = {}
        self._roots: dict[str, str] = {}  # container → its MergedDir, when known
        self._parents = ParentPaths()
        self._lock = threading.Lock()

    def watch(self, container_id: str, root: str | None = None) -> None:
        """Follow a container; its running processes are read from its cgroup now.
        ``root`` (its MergedDir) names users from its /etc/passwd; without it they are
        read through the root of the process being reported, which may be gone by then."""
        with self._lock:
            self._watched.add(container_id)
            if root:
                self._users[container_id] = UserNames(root)
                self._roots[container_id] = root
        for pid in container_pids(container_id, self._cgroup_root, layout=self._layout):
            with contextlib.suppress(ProcessGone, SensorError):
                node = TrackedProcess(pid, self._proc.ppid(pid), container_id, self._exe(pid))
                with self._lock:
                    self._tree.setdefault(pid, node)

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            self._watched.discard(container_id)
            self._users.pop(container_id, None)
            self._roots.pop(container_id, None)
            for pid in [p for p, n in self._tree.items() if n.container_id == container_id]:
                del self._tree[pid]

    def get(self, pid: int) -> TrackedProcess | None:
        with self._lock:
            return self._tree.get(pid)

    def processes(self, container_id: str) -> list[TrackedProcess]:
        with self._lock:
            return [n for n in self._tree.values() if n.container_id == container_id]

    def snapshot(self, container_id: str) -> list[ProcessEvent]:
        """The container's processes now, as events: what it already ran before it was
        watched (its first process always is: Docker reports a start after the exec)."""
        events = []
        for node in self.processes(container_id):
            event = self._process_event(node) if node.exe else None
            if event is not None:
                events.append(event)
        return events

    def prune(self) -> int:
        """Forget processes that are gone (their exit was lost); returns how many."""
        with self._lock:
            gone = [pid for pid in self._tree if not os.path.exists(self._proc.path(pid, ""))]
            for pid in gone:
                del self._tree[pid]
        return len(gone)

    def __call__(self, event: ProcEvent) -> None:
        """The connector listener."""
        if isinstance(event, ForkEvent):
            self._on_fork(event)
        elif isinstance(event, ExecEvent):
            self._on_exec(event)
        elif isinstance(event, ExitEvent) and not event.is_thread:
            self._on_exit(event)

    def _on_fork(self, event: ForkEvent) -> None:
        if event.is_thread:
            return
        with self._lock:
            parent = self._tree.get(event.parent_tgid)
            if parent is not None:  # a fork runs its parent's program until it execs
                child = TrackedProcess(event.child_tgid, parent.pid, parent.container_id)
                child.exe = parent.exe
                self._tree[event.child_tgid] = child

    def _on_exec(self, event: ExecEvent) -> None:
        pid, record = event.tgid, event.record
        if record is None:
            self._parents.forget(pid)  # it runs another program, read when needed
        elif record.on_rootfs:
            self._on_rootfs_record(event, record)
            return
        node = self._locate(pid, event.container_id, event.ppid)
        if node is None:
            return
        if record is not None:  # off the root: never the exec sensor's; read in the kernel
            self._on_offroot_record(node, event, record)
            return
        judged = self.claim(pid)
        if judged is not None:  # the exec sensor judged (and reported) it: no /proc read
            node.exe = judged
            if self.on_exec is not None:
                self.on_exec(node)
            return
        node.exe = self._program(node)
        if not node.exe:
            self.counters.late += 1
        if self.on_exec is not None:
            self.on_exec(node)
        if not node.exe or self.already_seen(node.container_id, pid, node.exe):
            return
        found = self._process_event(node)
        if found is None:
            self.counters.late += 1
            return
        self._report(found)

    def _on_offroot_record(
        self, node: TrackedProcess, event: ExecEvent, record: ExecRecord
    ) -> None:
        exe = self._exe(event.tgid)  # the file itself, for its children
        if self._judged(event.tgid, exe or os.path.normpath(record.filename)):
            # the exec sensor judged and reported it, on a mount of the container's
            node.exe = exe or record.filename
            self._parents.put(event.tgid, node.container_id, node.exe)
            if self.on_exec is not None:
                self.on_exec(node)
            return
        recorded = self._recorded_event(node.container_id, event, record, exe)
        node.exe = exe or recorded.path
        self._parents.put(event.tgid, node.container_id, node.exe)
        if self.on_exec is not None:
            self.on_exec(node)
        self._report(recorded)

    def _judged(self, pid: int, path: str) -> bool:
        """Did the exec sensor judge this very exec (of ``path``)? Its older claims for the
        pid — the shell of ``sh -c 'exec /vol/tool'``, whose own exec no record follows — are
        dropped on the way: only the same file counts."""
        for _ in range(MAX_CLAIMS):
            judged = self.claim(pid)
            if judged is None:
                return False
            if judged == path:
                return True
        return False

    def _on_rootfs_record(self, event: ExecEvent, record: ExecRecord) -> None:
        """An exec of the root file system, recorded while the model learns: the exec
        sensor judged it (and reported it: nothing to do), or the kernel let it through
        because the file was judged before (reported from the record)."""
        # Records come in the order of the execs: what each pid runs is known from them, not
        # from /proc read later (a parent may have exec'd again by the time a batch is read).
        if record.loader and not record.fileless:
            self._on_loader_record(event, record)
            return
        judged = self.claim(event.tgid)
        if judged is not None:
            self._parents.put(event.tgid, event.container_id, judged)
            return
        with self._lock:
            if event.container_id not in self._watched:
                return
        recorded = self._recorded_event(event.container_id, event, record)
        self._parents.put(event.tgid, event.container_id, recorded.path)
        self._report(recorded)

    def _on_loader_record(self, event: ExecEvent, record: ExecRecord) -> None:
        """A loader run by hand, sent whether or not the model learns. The exec sensor judged
        it only if it saw the loader (no ignore mark on it yet), and then under the name of
        the file loaded: a claim of another file is an earlier exec of the pid — ``bash -c
        '…; ld.so x'`` runs the loader in bash's own process, whose exec was judged and, the
        model being active, never recorded — and is dropped."""
        with self._lock:
            if event.container_id not in self._watched:
                return
        recorded = self._recorded_event(event.container_id, event, record)
        self._parents.put(event.tgid, event.container_id, recorded.path)
        if not self._judged(event.tgid, recorded.path):
            self._report(recorded)

    def _recorded_event(
        self, container_id: str, event: ExecEvent, record: ExecRecord, exe: str | None = None
    ) -> ProcessEvent:
        """``exe``: the file executed, when the caller read it already."""
        pid = event.tgid
        path = record.filename
        if not path.startswith("/"):  # relative to a cwd or a dirfd gone by now
            path = (self._exe(pid) if exe is None else exe) or path
        path = os.path.normpath(path)
        resolved, loader = exe or "", ""
        if record.fileless:
            path = fileless_name(self._raw_exe(pid), record.exe_name, path)
        elif record.loader and (target := loader_target(record.argv)) is not None:
            loader, path = path, self._loaded(pid, target)
            resolved = path
        else:
            path = applet_program(self._root(container_id, pid), path, record.exe_name, record.argv)
        found = ProcessEvent(
            container_id=container_id,
            pid=pid,
            ppid=event.ppid,
            path=path,
            argv=record.argv,
            uid=record.uid,
            user=self._user(container_id, pid, record.uid),
            parent_path=self._parent_path(container_id, event.ppid),
            time=time.time(),
            source="proc_connector",
            resolved_path=resolved,
            file_mode=record.mode,
            args_unread=not record.argv,  # the kernel could not copy them
            loader=loader,
            killed=record.killed,
        )
        if not record.fileless:
            return found
        sha256 = self._fileless_sha256(pid, event.ppid, record)
        return dataclasses.replace(found, fileless=True, size=record.size, sha256=sha256)

    def _root(self, container_id: str, pid: int) -> str:
        """The container's root seen from here: its MergedDir, else the process's root."""
        return self._roots.get(container_id) or self._proc.path(pid, "root")

    def _loaded(self, pid: int, target: str) -> str:
        """The file a loader run by hand loads, as a container path; a relative name as it
        was given when the working directory it is relative to is gone (a loader killed at
        its exec is gone at once)."""
        if target.startswith("/"):
            return absolute(target, "/")
        try:
            return absolute(target, self._proc.cwd(pid))
        except (ProcessGone, SensorError):
            return target

    def _raw_exe(self, pid: int) -> str:
        try:
            return self._proc.exe(pid)
        except (ProcessGone, SensorError):
            return ""

    def _fileless_sha256(self, pid: int, ppid: int, record: ExecRecord) -> str:
        """The bytes of a fileless program, through the process while it lives, else through
        a descriptor its parent still holds on the same file (a program killed at exec is
        gone at once); "" when neither reaches it."""
        found = sha256_of_path(self._proc.path(pid, "exe"))
        if found or not record.ino:
            return found
        for fd in _descriptors(self._proc.path(ppid, "fd")):
            try:
                st = os.stat(fd)
            except OSError:
                continue
            if st.st_ino == record.ino and kernel_dev(st.st_dev) == record.dev:
                return sha256_of_path(fd)
        return ""

    def _report(self, event: ProcessEvent) -> None:
        self.counters.events += 1
        self.sink(event)

    def _locate(self, pid: int, container_id: str = "", ppid: int = 0) -> TrackedProcess | None:
        """The tracked process, or a new node when the pid is in a watched container (the
        one the event names, else the one /proc names)."""
        with self._lock:
            node = self._tree.get(pid)
        if node is not None:
            return node
        found = container_id or container_of_pid(pid, self._proc.root, layout=self._layout)
        with self._lock:
            if found not in self._watched:
                return None
            node = self._tree[pid] = TrackedProcess(pid, ppid, found)
        if ppid:
            return node
        with contextlib.suppress(ProcessGone, SensorError):
            node.ppid = self._proc.ppid(pid)
        return node

    def _process_event(self, node: TrackedProcess) -> ProcessEvent | None:
        try:
            cmdline = self._proc.read(node.pid, "cmdline")
            status = self._proc.status(node.pid)
        except (ProcessGone, SensorError):
            return None
        node.ppid = status.ppid
        argv = tuple(os.fsdecode(a) for a in cmdline.split(b"\0")[:-1])
        path = self._requested_path(node, argv)
        loader = node.exe if is_loader(node.exe) and path != node.exe else ""
        found = ProcessEvent(
            container_id=node.container_id,
            pid=node.pid,
            ppid=status.ppid,
            path=path,
            argv=argv,
            uid=status.uid,
            user=self._user(node.container_id, node.pid, status.uid),
            parent_path=self._parent_path(node.container_id, status.ppid),
            time=time.time(),
            source="proc_connector",
            resolved_path=path if loader else node.exe,
            args_unread=not argv,  # an empty cmdline: the process was already leaving
            loader=loader,
        )
        return (
            _with_file(found, self._proc.path(node.pid, "exe")) if is_fileless(node.exe) else found
        )

    def _requested_path(self, node: TrackedProcess, argv: tuple[str, ...]) -> str:
        """For a multi-call binary (busybox) the applet argv names; for a loader run by hand
        the file it loads; for a fileless program its name (``/memfd:x``)."""
        if is_fileless(node.exe):
            return fileless_name(node.exe, "", node.exe)
        if is_loader(node.exe):
            target = loader_target(argv)
            if target is not None:
                return self._loaded(node.pid, target)
        root = self._root(node.container_id, node.pid)
        return applet_program(root, node.exe, node.exe, argv)

    def _parent_path(self, container_id: str, ppid: int) -> str:
        """The parent's executable; "" when it lives outside the container (runc, the shim
        after a ``docker exec``): its path would name a host file."""
        recent = self._parents.peek(ppid, container_id)  # its last exec, just recorded
        if recent is not None:
            return recent
        with self._lock:
            parent = self._tree.get(ppid)
        if parent is not None and parent.exe:
            return parent.exe
        return self._parents.get(ppid, container_id, lambda: self._read_parent(container_id, ppid))

    def _read_parent(self, container_id: str, ppid: int) -> str:
        if container_of_pid(ppid, self._proc.root, layout=self._layout) != container_id:
            return ""
        return self._exe(ppid)

    def _user(self, container_id: str, pid: int, uid: int) -> str:
        # The container's own /etc/passwd, through the root of one of its processes; a
        # cache whose process is gone names nobody, so it is dropped and made anew.
        users = self._users.get(container_id)
        if users is None:
            users = UserNames(self._proc.path(pid, "root"))
            self._users[container_id] = users
        name = users.name(uid)
        if name == str(uid) and container_id not in self._roots:
            self._users.pop(container_id, None)
        return name

    def _on_exit(self, event: ExitEvent) -> None:
        with self._lock:
            node = self._tree.pop(event.tgid, None)
        if node is None or self.on_exit is None:
            return
        self.on_exit(
            ProcessExit(
                node.container_id,
                node.pid,
                node.ppid,
                node.exe,
                event.code,
                event.signal,
                time.time(),
            )
        )

    def _exe(self, pid: int) -> str:
        """The executable; "" when unknown. ``runc init`` (a ``docker exec`` on its way into
        the container) reads "/" or runc's own memfd: not a program of the container."""
        try:
            exe = self._proc.exe(pid)
        except (ProcessGone, SensorError):
            return ""
        return "" if exe == "/" or exe.startswith(RUNC_CLONE) else exe

    def _program(self, node: TrackedProcess) -> str:
        """The executable of a process just exec'd. A memfd named as runc's clone of itself
        is ``runc init`` only while its parent (runc) lives outside the container: one made
        inside under that name is a fileless program like any other."""
        try:
            exe = self._proc.exe(node.pid)
        except (ProcessGone, SensorError):
            return ""
        if exe == "/":
            return ""
        if exe.startswith(RUNC_CLONE):
            parent = container_of_pid(node.ppid, self._proc.root, layout=self._layout)
            return exe if node.ppid and parent == node.container_id else ""
        return exe


def is_fileless(exe: str) -> bool:
    """An executable link that names no file: a memfd, a deleted file."""
    return exe.startswith("/memfd:") or exe.endswith(DELETED)


def _with_file(event: ProcessEvent, exe: str) -> ProcessEvent:
    """A fileless exec read from /proc, with its bytes' size and SHA-256 while it lives."""
    try:
        size: int | None = os.stat(exe).st_size
    except OSError:
        size = None
    return dataclasses.replace(event, fileless=True, size=size, sha256=sha256_of_path(exe))


def _descriptors(folder: str) -> list[str]:
    try:
        return [f"{folder}/{name}" for name in os.listdir(folder)]
    except OSError:
        return []
