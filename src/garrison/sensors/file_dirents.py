"""Entries appearing and disappearing in a container's directories: rename, link, symlink,
mkdir, mknod, unlink, rmdir — what opening a file for writing does not show.

A fid-reporting notification group (FAN_REPORT_DFID_NAME): each event names the parent
directory by its file handle and the entry by its name, and carries the actor's pid.

Why inode marks, one per directory: on this kernel (6.18) a FAN_MARK_FILESYSTEM (or
FAN_MARK_MOUNT) mark with fid reporting on a Docker overlay fails with EOPNOTSUPP (EINVAL for
the mount mark). fanotify_user.c (fanotify_test_fid) wants a file system able to *decode*
file handles for a super block or mount mark, and Docker's overlays are mounted without
``nfs_export`` (``/sys/module/overlay/parameters/nfs_export`` is N), so overlayfs only
*encodes* them (AT_HANDLE_FID, kernel 6.5). An inode mark needs encoding only, so every
directory of the container's root is marked (about 1100 for Debian 12, 0.1 s) and each
directory's handle is remembered with its path: open_by_handle_at() cannot work either, so a
handle is resolved from that table, never by the kernel. New directories (mkdir, or moved
in) are marked, and their subtree re-read, when their event arrives.

What is recorded (``FileEvent``):
- an entry appearing by rename (FAN_RENAME: the new name), mkdir, link(), symlink() or
  mknod() → kind "create" with its full container path;
- an entry removed by unlink() or rmdir() → kind "delete".
A regular file with one link appearing through FAN_CREATE is left to the write events
(``file_sensor``): that is open(O_CREAT), seen when it is closed, once its content is final.

What it can miss: entries made in a new directory before its event has been handled
(``mkdir -p a/b`` records ``a``; ``a/b`` is marked, not recorded); more than ``max_dirs``
directories in one container (counted in ``extra.dirent_marks_capped``); events whose
directory is unknown (``extra.dirent_unresolved``); volumes and bind mounts (other file
systems). A directory renamed while its subtree is re-read may keep its old path until its
next rename.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from garrison.errors import SensorError
from garrison.sensors import fanotify as fan
from garrison.sensors.events import FileEvent, FileKind, SensorCounters
from garrison.sensors.fanotify_loop import GroupThread, WatchedRoot
from garrison.sensors.passwd import open_in_root

log = logging.getLogger(__name__)

DIRENT_MASK = fan.FAN_CREATE | fan.FAN_DELETE | fan.FAN_RENAME | fan.FAN_ONDIR
DEFAULT_MAX_DIRS = 50_000
_FLAGS = fan.FAN_CLASS_NOTIF | fan.FAN_NONBLOCK | fan.FAN_REPORT_DFID_NAME | fan.FAN_UNLIMITED_MARKS

Emit = Callable[[FileEvent], None]
Actor = Callable[[int, WatchedRoot], tuple[int, str]]  # (pid, root) → (pid, executable)
IsNew = Callable[[tuple[str, str, int], float], bool]  # a coalescer


@dataclass(slots=True)
class DirTree:
    """One container's marked directories: file handle → container path."""

    root: WatchedRoot
    fsid: bytes
    dirs: dict[bytes, str] = field(default_factory=dict)

    @classmethod
    def of(cls, root: WatchedRoot) -> DirTree:
        fd = os.open(root.merged_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return cls(root, fan.fsid_of(fd))
        finally:
            os.close(fd)

    def forget(self, path: str) -> None:
        """A directory was removed: drop it and what was under it."""
        under = path + "/"
        for key, known in list(self.dirs.items()):
            if known == path or known.startswith(under):
                self.dirs.pop(key, None)


@dataclass(frozen=True, slots=True)
class Dirent:
    """What one event says: the entry's container path and what happened to it."""

    tree: DirTree
    parent: str
    name: str
    kind: FileKind
    is_dir: bool
    renamed: bool

    @property
    def path(self) -> str:
        return posixpath.join(self.parent, self.name)


class DirentWatcher:
    """Marks every directory of the watched containers; reports entries made and removed."""

    def __init__(
        self,
        emit: Emit,
        actor: Actor,
        is_new: IsNew,
        counters: SensorCounters,
        max_dirs: int = DEFAULT_MAX_DIRS,
    ) -> None:
        self.emit = emit
        self.actor = actor
        self.is_new = is_new
        self.counters = counters
        self.max_dirs = max_dirs
        self._trees: dict[bytes, DirTree] = {}  # by fsid; replaced whole on each change
        self._lock = threading.Lock()
        self._io = GroupThread("garrison-file-dirents", _FLAGS, self._handle)

    @property
    def _group(self) -> fan.FanotifyGroup | None:
        return self._io.group

    def start(self) -> None:
        self._io.start(self._mark_all)

    def _mark_all(self) -> None:
        for tree in list(self._trees.values()):
            self._mark_root(tree)

    def stop(self) -> None:
        self._io.stop()

    def caught_up(self) -> bool:
        return self._io.caught_up()

    def watch(self, root: WatchedRoot) -> None:
        tree = DirTree.of(root)
        with self._lock:
            old = self._take(root.container_id)
            self._trees = {**self._trees, tree.fsid: tree}
        if old is not None and old.fsid != tree.fsid:
            self._unmark_root(old)
        self._mark_root(tree)

    def unwatch(self, container_id: str) -> None:
        with self._lock:
            old = self._take(container_id)
        if old is not None:
            self._unmark_root(old)

    def marked(self, container_id: str) -> int:
        """How many directories of the container are marked (0 when not watched)."""
        tree = next((t for t in self._trees.values() if t.root.container_id == container_id), None)
        return len(tree.dirs) if tree is not None else 0

    def _take(self, container_id: str) -> DirTree | None:
        old = next((t for t in self._trees.values() if t.root.container_id == container_id), None)
        if old is not None:
            self._trees = {k: t for k, t in self._trees.items() if t is not old}
        return old

    # Marks --------------------------------------------------------------------------------

    def _mark_root(self, tree: DirTree) -> None:
        if self._group is None:
            return
        try:
            fd = os.open(tree.root.merged_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SensorError(f"cannot open {tree.root.merged_dir}: {exc.strerror}") from exc
        try:
            self._mark_subtree(tree, "/", fd)
        finally:
            os.close(fd)

    def _mark_subtree(self, tree: DirTree, top: str, fd: int) -> None:
        # fwalk opens each directory relative to its parent's fd without following symlinks:
        # a container swapping a directory for a link cannot lead the walk out of its root.
        for rel, dirs, _files, dirfd in os.fwalk(".", dir_fd=fd):
            if os.fstat(dirfd).st_dev != tree.root.dev:  # another file system mounted here
                dirs.clear()
                continue
            if not self._mark_dir(tree, posixpath.normpath(posixpath.join(top, rel)), dirfd):
                return

    def _mark_dir(self, tree: DirTree, path: str, dirfd: int) -> bool:
        """Mark one directory; False once the container has ``max_dirs`` of them."""
        if len(tree.dirs) >= self.max_dirs or self._group is None:
            self._count("dirent_marks_capped")
            return False
        try:
            self._group.mark(fan.FAN_MARK_ADD | fan.FAN_MARK_ONLYDIR, DIRENT_MASK, None, dirfd)
            tree.dirs[fan.encode_fid(dirfd)] = path
        except SensorError:  # removed meanwhile
            self._count("dirent_mark_failed")
        return True

    def _unmark_root(self, tree: DirTree) -> None:
        """Remove the marks of a container still running; a removed container's overlay is
        gone, and the kernel dropped its marks when it was unmounted."""
        group = self._group
        if group is None or not os.path.isdir(tree.root.merged_dir):
            return
        with contextlib.suppress(OSError):
            for _rel, _dirs, _files, dirfd in os.fwalk(tree.root.merged_dir):
                with contextlib.suppress(SensorError):
                    group.mark(fan.FAN_MARK_REMOVE | fan.FAN_MARK_ONLYDIR, DIRENT_MASK, None, dirfd)

    def _adopt(self, tree: DirTree, path: str) -> None:
        """A directory appeared at ``path``: mark it and what is under it (paths rewritten)."""
        try:
            fd = open_in_root(tree.root.merged_dir, path)
        except OSError:
            return  # gone already
        try:
            # Resolved through a symlink swapped in meanwhile: not the directory we were told of.
            if os.readlink(f"/proc/self/fd/{fd}") != tree.root.merged_dir + path:
                return
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                self._mark_subtree(tree, path, fd)
        finally:
            os.close(fd)

    # Events -------------------------------------------------------------------------------

    def _handle(self, raw: fan.RawEvent) -> None:
        if raw.mask & fan.FAN_Q_OVERFLOW:
            self.counters.drops += 1
            return
        try:
            event = self._build(raw)
        except Exception:
            self.counters.errors += 1
            log.exception("directory entry event of pid %d", raw.pid)
            return
        if event is not None:
            self.emit(event)

    def _build(self, raw: fan.RawEvent) -> FileEvent | None:
        dirent = self._dirent(raw)
        if dirent is None:
            return None
        if dirent.is_dir:
            self._follow_dir(dirent)
        elif dirent.kind == "create" and not dirent.renamed and _left_to_writes(dirent):
            return None
        root, now = dirent.tree.root, time.time()
        if not self.is_new((root.container_id, f"{dirent.kind} {dirent.path}", raw.pid), now):
            self._count("coalesced")
            return None
        pid, exe = self.actor(raw.pid, root)
        return FileEvent(root.container_id, dirent.path, dirent.kind, pid, exe, now)

    def _dirent(self, raw: fan.RawEvent) -> Dirent | None:
        wanted = fan.FAN_EVENT_INFO_TYPE_DFID_NAME
        renamed = bool(raw.mask & fan.FAN_RENAME)
        if renamed:
            wanted = fan.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME
        record = next((r for r in fan.parse_fid_records(raw.info) if r.info_type == wanted), None)
        tree = self._trees.get(record.fsid) if record is not None else None
        parent = tree.dirs.get(record.handle) if tree and record else None
        if record is None or tree is None or parent is None:
            self._count("dirent_unresolved")
            return None
        kind: FileKind = "delete" if raw.mask & fan.FAN_DELETE else "create"
        is_dir = bool(raw.mask & fan.FAN_ONDIR)
        return Dirent(tree, parent, record.name, kind, is_dir, renamed)

    def _follow_dir(self, dirent: Dirent) -> None:
        if dirent.kind == "delete":
            dirent.tree.forget(dirent.path)
        else:
            self._adopt(dirent.tree, dirent.path)

    def _count(self, name: str) -> None:
        self.counters.extra[name] = self.counters.extra.get(name, 0) + 1


def _left_to_writes(dirent: Dirent) -> bool:
    """A regular file with one link, made by FAN_CREATE, is open(O_CREAT): the write events
    report it once it is closed (and its content can be checked). A hard link, a symlink or a
    device node is recorded here. A file gone already is left too (its delete is recorded)."""
    try:
        fd = open_in_root(dirent.tree.root.merged_dir, dirent.parent)
    except OSError:
        return True
    try:
        st = os.stat(dirent.name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return True
    finally:
        os.close(fd)
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1
