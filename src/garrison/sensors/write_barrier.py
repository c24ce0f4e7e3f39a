"""Read-only mounts for the paths a prevent rule forbids writing to, and the audit of what
they refuse.

The open-permission guard (``file_guard``) makes every open in a guarded container wait for
an answer — reads of the protected files included, since fanotify cannot tell a read from a
write at open time. When what a policy refuses is a set of plain paths (``/etc``: the path
and everything below it), the kernel can refuse it by itself: each path is made read-only
in the container's mount namespace (``mountns``, run as a child process), so reads cost
nothing and writes fail with EROFS ("Read-only file system"). What that refuses is sent by
BPF programs on the syscalls' exits (``BpfProcEvents.refusals``); :meth:`on_refused` names
the path as the container sees it and hands it to the judge, whose finding is audited as a
refused write — as the guard's are.

Mounts are made and removed on a thread of their own (a child process takes some 40 ms):
the caller keeps the guard on until ``settled`` says the mounts are in place.

What read-only mounts refuse beyond the guard: rename, link, mkdir, mknod, symlink, unlink,
rmdir and truncate in those paths, and writes to the files Docker bind-mounts there
(``/etc/hosts``…). What they do not: a process whose working directory or open directory
was inside such a path before the mount keeps the old, writable view of it, through
relative paths; files opened for writing before the mount stay writable. A container that
holds CAP_SYS_ADMIN could unmount them: such a container keeps the guard.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from garrison.errors import GarrisonError, SensorError
from garrison.policy.matchers import ancestors
from garrison.sensors.events import FileEvent, FileKind, RefusedWrite, SensorCounters
from garrison.sensors.file_guard import FileJudge
from garrison.sensors.mountns import state_folder, state_name
from garrison.sensors.procfs import ProcFS

log = logging.getLogger(__name__)

AT_FDCWD = -100
O_CREAT = 0o100
CAP_SYS_ADMIN = 21
HELPER_TIMEOUT = 10.0

# (container id, on) → the kernel sends, or stops sending, that container's refused writes
Refusals = Callable[[str, bool], None]
# (container id, read-only mounts in place for every path asked) → the guard may go, or stay
Settled = Callable[[str, bool], None]
# (container id, tid) → the writer's pid and executable as the container names it
Writer = Callable[[str, int], tuple[int, str]]


@dataclass(frozen=True, slots=True)
class _Request:
    container_id: str
    pid: int
    paths: frozenset[str]
    generation: int


class MountError(SensorError):
    """The helper could not make a container's paths read-only."""


def can_unmount(procfs: ProcFS, pid: int) -> bool:
    """Does the container's first process hold CAP_SYS_ADMIN in its bounding set? Then its
    processes may unmount what Garrison mounts (privileged, or ``--cap-add SYS_ADMIN``)."""
    bounding = procfs.capabilities_bounding(pid)
    return bounding is None or bool(bounding >> CAP_SYS_ADMIN & 1)


def leftover(pid: int) -> bool:
    """Did a defender before this one make read-only mounts in this container? (It was killed
    outright: one that stops removes them.)"""
    try:
        return os.path.exists(os.path.join(state_folder(), state_name(pid)))
    except OSError:
        return False


def run_helper(pid: int, paths: frozenset[str]) -> dict[str, object]:
    """``python -m garrison.sensors.mountns PID PATH…`` and its JSON report."""
    argv = [sys.executable, "-m", "garrison.sensors.mountns", str(pid), *sorted(paths)]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=HELPER_TIMEOUT, check=False)
        report = json.loads(done.stdout or b"{}")
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise MountError(f"read-only mounts for pid {pid}: {exc}") from exc
    if not isinstance(report, dict) or "error" in report or done.returncode != 0:
        why = report.get("error") if isinstance(report, dict) else None
        raise MountError(f"read-only mounts for pid {pid}: {why or done.stderr[-300:]!r}")
    return report


class WriteBarrier:
    """Read-only paths per container, kept in step with what the rules ask."""

    def __init__(
        self,
        judge: FileJudge,
        counters: SensorCounters,
        writer: Writer,
        procfs: ProcFS,
        helper: Callable[[int, frozenset[str]], dict[str, object]] = run_helper,
    ) -> None:
        self.judge = judge
        self.counters = counters
        self.writer = writer
        self.procfs = procfs
        self.helper = helper
        self.refusals: Refusals | None = None  # set once the BPF programs run
        self.settled: Settled | None = None
        self._applied: dict[str, frozenset[str]] = {}  # container → read-only paths (both
        # as asked and as mounted); a new dict on each change, read without the lock
        self._generation: dict[str, int] = {}
        # container → the helper's list of the mounts it made there, removed with the
        # container (the namespace's inode number, which names it, may serve again)
        self._state_files: dict[str, str] = {}
        self._in_place: dict[str, frozenset[str]] = {}  # container → paths all read-only
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self.refusals is not None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="garrison-mounts", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = HELPER_TIMEOUT) -> None:
        """Stop after the requests queued so far (the mounts stay: see :meth:`release_all`)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def usable(self, pid: int) -> bool:
        """Can this container's writes be refused by read-only mounts?"""
        if not self.available or pid <= 0:
            return False
        try:
            return not can_unmount(self.procfs, pid)
        except GarrisonError:
            return False

    def set(self, container_id: str, pid: int, paths: frozenset[str]) -> None:
        """Make exactly ``paths`` read-only in the container (none: remove Garrison's), soon;
        ``settled`` is called with the outcome, unless a newer request came meanwhile."""
        if not paths and container_id not in self._generation and not leftover(pid):
            return  # never asked for, nothing left by an earlier defender: nothing to remove
        with self._lock:
            generation = self._generation.get(container_id, 0) + 1
            self._generation[container_id] = generation
            self._in_place.pop(container_id, None)
        self._queue.put(_Request(container_id, pid, paths, generation))

    def in_place(self, container_id: str) -> frozenset[str] | None:
        """The paths last asked for, when every one of them is read-only now."""
        return self._in_place.get(container_id)

    def read_only(self, container_id: str) -> frozenset[str]:
        return self._applied.get(container_id, frozenset())

    def forget(self, container_id: str) -> None:
        """The container is gone (its mount namespace and mounts with it)."""
        with self._lock:
            self._generation.pop(container_id, None)
            self._in_place.pop(container_id, None)
            self._publish(container_id, frozenset())
            state = self._state_files.pop(container_id, None)
        if state:
            with contextlib.suppress(OSError):
                os.unlink(state)
        self._refusals(container_id, False)

    def release_all(self, pids: dict[str, int]) -> None:
        """On shutdown: remove Garrison's mounts (rules no longer in force must not refuse)."""
        for container_id in list(self._applied):
            pid = pids.get(container_id, 0)
            if pid > 0:
                try:
                    self.helper(pid, frozenset())
                except MountError as exc:
                    log.warning("files: %s", exc)
            self.forget(container_id)

    # -- the mount thread -----------------------------------------------------------------

    def _run(self) -> None:
        while (request := self._queue.get()) is not None:
            if self._generation.get(request.container_id) != request.generation:
                continue  # a newer request for this container is queued
            try:
                ok = self._apply(request)
            except Exception:
                self.counters.errors += 1
                log.exception("files: read-only mounts of %s", request.container_id[:12])
                ok = False
            with self._lock:
                current = self._current(request)
                if current and ok and request.paths:
                    self._in_place[request.container_id] = request.paths
            if self.settled is not None and current:
                self.settled(request.container_id, ok)

    def _current(self, request: _Request) -> bool:
        return self._generation.get(request.container_id) == request.generation

    def _apply(self, request: _Request) -> bool:
        cid = request.container_id
        if request.paths and not self._refusals(cid, True):
            return False  # a refusal nobody would audit: the guard stays instead
        # Published before the helper runs: a write refused as soon as a mount is made,
        # before the helper has said so, is audited.
        before = self._applied.get(cid, frozenset())
        self._publish_current(request, before | request.paths)
        try:
            report = self.helper(request.pid, request.paths)
        except MountError as exc:
            log.warning("files: %s", exc)
            self._publish_current(request, before)  # the helper told nothing of what it did
            return False
        if isinstance(report.get("state"), str) and report["state"]:
            with self._lock:
                self._state_files[cid] = str(report["state"])
        done = {**_dict(report.get("mounted")), **_dict(report.get("kept"))}
        failed = _dict(report.get("failed"))
        for path, why in failed.items():
            log.warning("files: %s of %s not made read-only: %s", path, cid[:12], why)
        current = self._publish_current(request, frozenset(done) | frozenset(done.values()))
        if current and not done:
            self._refusals(cid, False)
        self._count("mounts", len(_dict(report.get("mounted"))))
        return not failed and set(done) == set(request.paths)

    def _publish_current(self, request: _Request, paths: frozenset[str]) -> bool:
        """Publish ``paths`` as the container's read-only paths, unless a newer request (or
        forget(), from another thread) came meanwhile; whether it was published."""
        with self._lock:
            current = self._current(request)
            if current:
                self._publish(request.container_id, paths)
        return current

    def _refusals(self, container_id: str, on: bool) -> bool:
        """Have the kernel send (or stop sending) the container's refused writes."""
        if self.refusals is None:
            return False
        try:
            self.refusals(container_id, on)
        except (GarrisonError, OSError) as exc:
            log.warning("files: refused writes of %s not followed: %s", container_id[:12], exc)
            return False
        return True

    def _publish(self, container_id: str, paths: frozenset[str]) -> None:
        applied = dict(self._applied)
        if paths:
            applied[container_id] = paths
        else:
            applied.pop(container_id, None)
        self._applied = applied

    # -- refused writes (the BPF reader's thread) ----------------------------------------

    def on_refused(self, refused: RefusedWrite) -> None:
        """A write the kernel refused: audited when a read-only path of ours refused it
        (EROFS also comes from a container run ``--read-only``, which is not ours to say)."""
        read_only = self._applied.get(refused.container_id)
        if not read_only:
            return
        path = self._resolve(refused)
        if path is None or not any(a in read_only for a in ancestors(path)):
            self._count("refused_elsewhere")
            return
        self._count("write_refused")
        pid, exe = refused.tgid, refused.exe  # read at the call: the caller may be gone
        if not exe:
            pid, exe = self.writer(refused.container_id, refused.pid)
        kind = self._kind(refused, path)
        self.judge(FileEvent(refused.container_id, path, kind, pid, exe, time.time()))

    def _resolve(self, refused: RefusedWrite) -> str | None:
        """The path as the container names it: a relative one joined to the caller's working
        directory, or to the directory its dfd names (None once the caller is gone)."""
        if refused.path.startswith("/"):
            return os.path.normpath(refused.path)
        if refused.dfd == AT_FDCWD and refused.cwd is not None:
            return os.path.normpath(os.path.join(refused.cwd, refused.path))
        try:
            if refused.dfd == AT_FDCWD:
                base = self.procfs.cwd(refused.pid)
            else:
                base = self.procfs.readlink(refused.tgid, f"fd/{refused.dfd}")
        except GarrisonError:
            self.counters.late += 1
            return None
        return os.path.normpath(os.path.join(base, refused.path))

    def _kind(self, refused: RefusedWrite, path: str) -> FileKind:
        if refused.op == "delete":
            return "delete"
        if refused.op == "create":
            return "create"
        if refused.op == "open" and refused.flags & O_CREAT:
            inside = self.procfs.path(refused.tgid, "root") + path
            return "write" if os.path.lexists(inside) else "create"
        return "write"

    def _count(self, name: str, n: int = 1) -> None:
        self.counters.extra[name] = self.counters.extra.get(name, 0) + n


def _dict(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
