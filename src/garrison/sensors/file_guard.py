"""Open-permission mode: refuse a write before it happens, on the containers that need it.

A group of class FAN_CLASS_CONTENT with a FAN_OPEN_PERM filesystem mark per guarded
container. Every open in such a container waits for an answer, so only containers whose
policy has a file prevent rule are guarded, and a read-only open is answered at once, from
the flags in ``/proc/TID/syscall`` (openat's third argument; shared/notes/kernel.md), without
asking the judge.

What this covers and what it does not:
- It refuses open(), openat(), openat2() and creat() with O_WRONLY, O_RDWR, O_CREAT or
  O_TRUNC: the caller gets EPERM.
- A file created by a refused O_CREAT open stays, empty: the kernel creates it before it
  asks (do_open() → vfs_open()). Its content is never written.
- rename(), link(), unlink(), mkdir(), truncate() by path and writes through a file
  descriptor opened before the container was guarded raise no open event: not refused.
- Volumes, bind mounts and tmpfs mounts (Docker's /etc/hosts, /etc/hostname and
  /etc/resolv.conf among them) are guarded through mount marks (other_mounts.py); mounts the
  container makes after it started are not.
- With ``may_deny``, files no rule could protect get an ignore mark at their first
  open, so reading libraries costs nothing after the first time. A file a rule protects
  cannot be skipped (the kernel's marks do not tell reads from writes): its reads are
  answered from its inode, without looking up its path or the rules again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Protocol

from garrison.errors import ProcessGone, SensorError
from garrison.sensors import fanotify as fan
from garrison.sensors.events import FileEvent, FileKind, SensorCounters, Verdict
from garrison.sensors.fanotify_loop import FilesystemMarks, GroupThread, WatchedRoot
from garrison.sensors.latency import LatencyHistogram
from garrison.sensors.links import other_name
from garrison.sensors.procfs import NotAsleep, ProcFS, has_write_intent

log = logging.getLogger(__name__)

MAX_PROTECTED = 65_536


class FileJudge(Protocol):
    """Answers an open-for-write permission event from memory, at once: never waits on I/O
    and never opens a file in a guarded container (its open would wait for this thread)."""

    def __call__(self, event: FileEvent) -> Verdict: ...


KindOf = Callable[[str, str], FileKind]  # (container id, path) → "write" | "create"
# (container id, path) → False when no write to that path could ever be refused: its inode
# may then be skipped by the kernel. Answers from memory, like a judge.
MayDeny = Callable[[str, str], bool]
# container id → the names its policy protects (links.py): a write through another hard link
# of one of them is judged as a write to it.
Linked = Callable[[str], tuple[str, ...]]


class FileGuard:
    """Answers every open in the guarded containers; asks ``judge`` about opens for writing."""

    def __init__(
        self,
        judge: FileJudge,
        counters: SensorCounters,
        kind_of: KindOf,
        procfs: ProcFS,
        may_deny: MayDeny | None = None,
        *,
        linked: Linked | None = None,
    ) -> None:
        self.judge = judge
        self.may_deny = may_deny
        self.linked = linked
        self.counters = counters
        self.kind_of = kind_of
        self.procfs = procfs
        self._protected: set[tuple[int, int]] = set()  # (dev, ino) of files may_deny protects
        self._io = GroupThread(
            "garrison-file-guard",
            fan.FAN_CLASS_CONTENT | fan.FAN_NONBLOCK | fan.FAN_REPORT_TID | fan.FAN_UNLIMITED_MARKS,
            self._handle,
        )
        self._marks = FilesystemMarks(self._io, fan.FAN_OPEN_PERM)

    @property
    def _group(self) -> fan.FanotifyGroup | None:
        return self._io.group

    @property
    def latency(self) -> LatencyHistogram:
        """From each open event read to its answer written (the open waits that long)."""
        return self._io.latency

    def start(self) -> None:
        self._io.start(self._marks.mark_all)

    def stop(self) -> None:
        self._io.stop()

    def guard(self, root: WatchedRoot) -> None:
        self._marks.add(root)

    def release(self, container_id: str) -> None:
        self._marks.remove(container_id)

    def guarded(self) -> list[str]:
        return self._marks.container_ids()

    def forget_ignores(self) -> None:
        """Drop the ignore marks of files ``may_deny`` cleared (its answers changed)."""
        self._protected = set()
        if self._group is not None:
            self._group.mark(fan.FAN_MARK_FLUSH, 0, None)

    def _handle(self, raw: fan.RawEvent) -> None:
        if raw.fd < 0:
            self.counters.drops += 1
            return
        verdict = Verdict.ALLOW
        try:
            verdict = self._decide(raw)
        except ProcessGone:
            self.counters.late += 1
        except NotAsleep:  # its open flags cannot be read: in doubt, the open goes on
            self._count("unread_flags")
        except Exception:
            self.counters.errors += 1
            log.exception("open event of pid %d: allowed unjudged", raw.pid)
        try:
            if self._group is not None:
                deny = verdict is Verdict.DENY
                self._group.respond(raw.fd, fan.FAN_DENY if deny else fan.FAN_ALLOW)
        finally:
            os.close(raw.fd)

    def _decide(self, raw: fan.RawEvent) -> Verdict:
        st = os.fstat(raw.fd)
        root = self._marks.roots.find(raw.fd, st.st_dev)
        call = self.procfs.waiting_syscall(raw.pid) if root is not None else None
        flags = self.procfs.open_flags(raw.pid, call) if call is not None else None
        if root is None:
            return Verdict.ALLOW
        reading = flags is None or not has_write_intent(flags)  # a read, or an exec's open
        inode = (st.st_dev, st.st_ino)
        if reading and inode in self._protected:  # allowed either way: no path, no policy
            self._count("read_of_protected")
            return Verdict.ALLOW
        path = root.container_path(os.readlink(f"/proc/self/fd/{raw.fd}"))
        via = ""
        if not reading and st.st_nlink > 1 and self.linked is not None:
            other = other_name(root.merged_dir, st, self.linked(root.container_id), path)
            if other is not None:  # written through another name: judged as that file
                via, path = path, other
        if not self._may_deny(root, path):
            self._skip(raw.fd, st.st_nlink)
            return Verdict.ALLOW
        self._remember_protected(inode)
        if reading:
            return Verdict.ALLOW
        verdict = self.judge(self._event(raw.pid, root, path, via))
        if verdict is Verdict.DENY:
            self._count("write_denied")
        return verdict

    def _may_deny(self, root: WatchedRoot, path: str) -> bool:
        return self.may_deny is None or self.may_deny(root.container_id, path)

    def _remember_protected(self, inode: tuple[int, int]) -> None:
        """A file some write to which may be refused: its reads, answered allow whatever its
        path, need not look it up again (the group's marks cannot tell reads from writes)."""
        if len(self._protected) >= MAX_PROTECTED:
            self._protected.clear()
        self._protected.add(inode)

    def _skip(self, fd: int, links: int) -> None:
        """An ignore mark on a file no rule protects: its opens stop costing a round trip.

        Only for a single-link file: an ignore mark is per inode, and a second name could be
        a protected path. It survives writes (FAN_MARK_IGNORED_SURV_MODIFY): what may be
        refused depends on the path, not the content. A rename or link in the container, or
        new rules, drop every mark (``forget_ignores``)."""
        if self.may_deny is None or self._group is None or links != 1:
            return
        flags = fan.FAN_MARK_ADD | fan.FAN_MARK_IGNORED_MASK | fan.FAN_MARK_IGNORED_SURV_MODIFY
        try:
            self._group.mark(flags, fan.FAN_OPEN_PERM, None, dirfd=fd)
            self._count("open_ignored")
        except SensorError:
            self.counters.errors += 1

    def _count(self, name: str) -> None:
        self.counters.extra[name] = self.counters.extra.get(name, 0) + 1

    def _event(self, tid: int, root: WatchedRoot, path: str, via: str) -> FileEvent:
        status = self.procfs.status(tid)
        exe = root.container_path(self.procfs.exe(tid))
        kind = self.kind_of(root.container_id, path)
        return FileEvent(root.container_id, path, kind, status.tgid, exe, time.time(), via)
