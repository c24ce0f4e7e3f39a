"""Which files processes in a watched container write or create.

A notification group (FAN_CLASS_NOTIF) with a filesystem mark for FAN_CLOSE_WRITE | FAN_MODIFY
on each container's overlay: the writer never waits for Garrison. The event fd's link names
the file as the container sees it. Repeats of one path by one process are coalesced.

The kernel coalesces too: once a file's event is read, an ignore mark on its inode (one that
survives writes) keeps its later writes from raising events until all such marks are flushed,
every KERNEL_COALESCE_SECONDS. A file written in a loop (a log, a counter) so costs an event a
second, not two per write. What that gives up: within that second, a second process writing
the same file is not reported (its path was, with the first writer), and a content written
by then is not checked for ELF at its close (an exec of it is still judged: see drift).

``kind`` is "create" for a file that is not part of the image (its upper-layer copy has no
``trusted.overlay.origin``: overlayfs sets that xattr when it copies an image file up before
its first write — Documentation/filesystems/overlayfs.rst) and "write" for an image file
written to.

Entries made and removed without a write — rename (``mv /tmp/x /etc/x``), link, symlink,
mkdir, mknod, unlink, rmdir — come from a second, fid-reporting group (``file_dirents``):
kind "create" for an entry that appeared, "delete" for one removed. ``start``, ``stop``,
``watch`` and ``unwatch`` drive both groups; the counters are shared.

Prevention: given a ``FileJudge``, ``watch(container, prevent=True)`` (or ``set_prevent``)
also guards the container in open-permission mode (``file_guard``): opens for writing wait
for the judge, and a DENY makes them fail with EPERM. Nothing refuses a rename, link, unlink
or mkdir (no fanotify permission event exists for them on this kernel): those are recorded
after the fact, so a rule that would have prevented them audits them as not refused.

When all the policy refuses is a set of plain paths (``readonly``) and the BPF programs that
report refused writes run, those paths are made read-only in the container instead
(``write_barrier``): the guard stays only until the mounts are in place, and reads cost
nothing. ``write_prevention="fanotify"`` keeps the guard always.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from garrison.errors import GarrisonError, SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors import fanotify as fan
from garrison.sensors.events import FileEvent, FileKind, SensorCounters
from garrison.sensors.fanotify_loop import FilesystemMarks, GroupThread, WatchedRoot
from garrison.sensors.file_dirents import DirentWatcher
from garrison.sensors.file_guard import FileGuard, FileJudge, Linked, MayDeny
from garrison.sensors.latency import LatencyHistogram
from garrison.sensors.links import other_name
from garrison.sensors.procfs import ProcFS
from garrison.sensors.write_barrier import WriteBarrier

log = logging.getLogger(__name__)

FileSink = Callable[[FileEvent], None]
WRITE_MASK = fan.FAN_CLOSE_WRITE | fan.FAN_MODIFY
ORIGIN_XATTR = "trusted.overlay.origin"
DEFAULT_COALESCE_SECONDS = 30.0
KERNEL_COALESCE_SECONDS = 1.0
MAX_IGNORED = 16_384  # inode ignore marks set between flushes: more, and flush at once
_MAX_RECENT = 8192


class Coalescer:
    """Remembers (container, path, pid) for ``window`` seconds: a repeat within it is dropped."""

    def __init__(self, window: float = DEFAULT_COALESCE_SECONDS, size: int = _MAX_RECENT) -> None:
        self.window = window
        self.size = size
        self._seen: OrderedDict[tuple[str, str, int], float] = OrderedDict()

    def is_new(self, key: tuple[str, str, int], now: float) -> bool:
        last = self._seen.get(key)
        if last is not None and now - last < self.window:
            return False
        self._seen[key] = now
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


def upper_dir(merged_dir: str) -> str | None:
    """Docker's overlay2 keeps ``diff`` (the upper layer) beside ``merged``."""
    candidate = os.path.join(os.path.dirname(merged_dir), "diff")
    return candidate if os.path.isdir(candidate) else None


def file_kind(upper: str | None, path: str) -> FileKind:
    """ "create" when the container made the file, "write" when it came from the image."""
    if upper is None:
        return "write"
    try:
        os.getxattr(os.path.join(upper, path.lstrip("/")), ORIGIN_XATTR, follow_symlinks=False)
    except OSError:
        return "create" if os.path.lexists(os.path.join(upper, path.lstrip("/"))) else "write"
    return "write"


class FileSensor:
    """Records the files written or created in the watched containers' root file systems."""

    def __init__(
        self,
        sink: FileSink,
        *,
        procfs: ProcFS | None = None,
        coalesce_seconds: float = DEFAULT_COALESCE_SECONDS,
        judge: FileJudge | None = None,
        may_deny: MayDeny | None = None,
        write_prevention: str = "auto",
        kernel_coalesce: float = KERNEL_COALESCE_SECONDS,
        linked: Linked | None = None,
    ) -> None:
        self.sink = sink
        self.linked = linked
        self.procfs = procfs or ProcFS()
        self.counters = SensorCounters()
        self._guard = (
            FileGuard(judge, self.counters, self.kind_of, self.procfs, may_deny, linked=linked)
            if judge
            else None
        )
        self.barrier = (
            WriteBarrier(judge, self.counters, self._writer_of, self.procfs)
            if judge and write_prevention == "auto"
            else None
        )
        if self.barrier is not None:
            self.barrier.settled = self._settled
        self._pids: dict[str, int] = {}  # container → its first process, for its namespace
        self._read_only_wanted: dict[str, frozenset[str]] = {}
        self._coalescer = Coalescer(coalesce_seconds)
        # Its own coalescer: a file made by open(O_CREAT) and hard-linked must still be
        # reported by the write events, when its content can be checked.
        dirent_coalescer = Coalescer(coalesce_seconds)
        self.dirents = DirentWatcher(
            self._emit_dirent, self._writer, dirent_coalescer.is_new, self.counters
        )
        self._uppers: dict[str, str | None] = {}
        self.kernel_coalesce = kernel_coalesce
        self._ignored = 0  # ignore marks set since the last flush
        self._first_ignored = 0.0
        self._io = GroupThread(
            "garrison-file-sensor",
            fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK | fan.FAN_REPORT_TID | fan.FAN_UNLIMITED_MARKS,
            self._handle,
            self._flush_ignores,
        )
        self._marks = FilesystemMarks(self._io, WRITE_MASK)

    @property
    def _group(self) -> fan.FanotifyGroup | None:
        return self._io.group

    def start(self) -> None:
        self._io.start(self._marks.mark_all)
        self.dirents.start()
        if self._guard is not None:
            self._guard.start()
        if self.barrier is not None:
            self.barrier.start()

    def stop(self) -> None:
        if self.barrier is not None:
            self.barrier.stop()
            self.barrier.release_all(self._pids)
        if self._guard is not None:
            self._guard.stop()
        self.dirents.stop()
        self._io.stop()

    def caught_up(self) -> bool:
        """Every write and entry the kernel had reported when called is handed on."""
        return self._io.caught_up() and self.dirents.caught_up()

    def watch(
        self,
        container: ContainerInfo,
        prevent: bool = False,
        readonly: frozenset[str] | None = None,
    ) -> None:
        """Record writes in ``container``; with ``prevent``, also refuse writes (see
        :meth:`set_prevent`)."""
        root = WatchedRoot.of(container)
        self._uppers[container.id] = upper_dir(root.merged_dir)
        self._pids[container.id] = container.pid
        self._marks.add(root)
        self.dirents.watch(root)
        self.set_prevent(container.id, prevent, readonly)

    def set_prevent(
        self, container_id: str, prevent: bool, readonly: frozenset[str] | None = None
    ) -> None:
        """Refuse a watched container's writes as its policy says, or stop (at once).
        ``readonly``: the paths whose read-only mounts would refuse all of it, when so."""
        root = self._marks.roots.get(container_id)
        if self._guard is None:
            if prevent:
                raise SensorError("file prevention needs a FileSensor made with a judge")
            return
        pid = self._pids.get(container_id, 0)
        barrier = self.barrier
        if prevent and readonly and barrier is not None and barrier.usable(pid):
            self._read_only_wanted[container_id] = readonly
            if barrier.in_place(container_id) == readonly:
                return  # new rules, same read-only paths: nothing to redo
        else:
            self._read_only_wanted.pop(container_id, None)
            readonly = frozenset()
        if prevent and root is not None:
            self._guard.guard(root)  # until the read-only mounts, if any, are in place
        else:
            self._guard.release(container_id)
        if barrier is not None:
            barrier.set(container_id, pid, readonly or frozenset())

    def _settled(self, container_id: str, ok: bool) -> None:
        """The read-only mounts asked for are in place (``ok``): the guard can go."""
        if container_id not in self._read_only_wanted or self._guard is None:
            return
        if ok:
            self._guard.release(container_id)
        else:
            log.warning("files: %s stays guarded by open permissions", container_id[:12])

    def forget_ignores(self) -> None:
        if self._guard is not None:
            self._guard.forget_ignores()

    def guarded(self) -> list[str]:
        return self._guard.guarded() if self._guard is not None else []

    @property
    def latency(self) -> LatencyHistogram | None:
        """The open-permission guard's answers (None: no guard, no open ever waits)."""
        return self._guard.latency if self._guard is not None else None

    def unwatch(self, container_id: str) -> None:
        self._marks.remove(container_id)
        self.dirents.unwatch(container_id)
        if self._guard is not None:
            self._guard.release(container_id)
        if self.barrier is not None:
            self.barrier.forget(container_id)
        self._read_only_wanted.pop(container_id, None)
        self._pids.pop(container_id, None)
        self._uppers.pop(container_id, None)

    def kind_of(self, container_id: str, path: str) -> FileKind:
        return file_kind(self._uppers.get(container_id), path)

    def watched(self) -> list[str]:
        return self._marks.container_ids()

    def _handle(self, raw: fan.RawEvent) -> None:
        if raw.fd < 0:  # FAN_Q_OVERFLOW: the kernel's queue was full
            self.counters.drops += 1
            return
        try:
            event = self._build(raw)
        except Exception:
            self.counters.errors += 1
            log.exception("file event of pid %d", raw.pid)
            event = None
        else:
            self._ignore_for_now(raw.fd)
        finally:
            os.close(raw.fd)
        if event is not None:
            self._emit(event)

    def _ignore_for_now(self, fd: int) -> None:
        """No more write events of this file until the next flush (see the module's doc)."""
        group = self._group
        if group is None or self.kernel_coalesce <= 0:
            return
        if self._ignored >= MAX_IGNORED:
            self._flush_ignores(force=True)
        flags = fan.FAN_MARK_ADD | fan.FAN_MARK_IGNORED_MASK | fan.FAN_MARK_IGNORED_SURV_MODIFY
        try:
            group.mark(flags, WRITE_MASK, None, dirfd=fd)
        except SensorError:  # the file's later writes are read and coalesced in Python
            self._count("ignore_failed")
            return
        if self._ignored == 0:
            self._first_ignored = time.monotonic()
        self._ignored += 1
        self._count("write_ignored")

    def _flush_ignores(self, force: bool = False) -> None:
        """Drop the ignore marks once the oldest is KERNEL_COALESCE_SECONDS old (the group
        thread calls this every quarter second)."""
        if self._ignored == 0 or self._group is None:
            return
        if force or time.monotonic() - self._first_ignored >= self.kernel_coalesce:
            self._group.mark(fan.FAN_MARK_FLUSH, 0, None)
            self._ignored = 0

    def _build(self, raw: fan.RawEvent) -> FileEvent | None:
        st = os.fstat(raw.fd)
        root = self._marks.roots.find(raw.fd, st.st_dev)
        if root is None:
            return None
        path = root.container_path(os.readlink(f"/proc/self/fd/{raw.fd}"))
        via = ""
        if st.st_nlink > 1 and self.linked is not None:
            names = self.linked(root.container_id)
            other = other_name(root.merged_dir, st, names, path)
            if other is not None:
                via, path = path, other
        now = time.time()
        if not self._coalescer.is_new((root.container_id, path, raw.pid), now):
            self._count("coalesced")
            return None
        pid, exe = self._writer(raw.pid, root)
        kind = self.kind_of(root.container_id, path)
        return FileEvent(root.container_id, path, kind, pid, exe, now, via)

    def _writer_of(self, container_id: str, tid: int) -> tuple[int, str]:
        root = self._marks.roots.get(container_id)
        return self._writer(tid, root) if root is not None else (tid, "")

    def _writer(self, tid: int, root: WatchedRoot) -> tuple[int, str]:
        """The writer's pid and executable; the tid and "" once it has exited."""
        try:
            tgid = self.procfs.status(tid).tgid
            return tgid, root.container_path(self.procfs.exe(tid))
        except GarrisonError:
            self.counters.late += 1
            return tid, ""

    def _emit_dirent(self, event: FileEvent) -> None:
        # A file the guard lets the kernel skip (an ignore mark: no rule protects its path)
        # may have just been renamed or linked to a path a rule does protect: judge it again.
        guard = self._guard
        if event.kind == "create" and guard is not None and event.container_id in guard.guarded():
            guard.forget_ignores()
        self._emit(event)

    def _emit(self, event: FileEvent) -> None:
        self.counters.events += 1
        try:
            self.sink(event)
        except Exception:
            self.counters.errors += 1
            log.exception("file event sink failed")

    def _count(self, name: str) -> None:
        self.counters.extra[name] = self.counters.extra.get(name, 0) + 1
