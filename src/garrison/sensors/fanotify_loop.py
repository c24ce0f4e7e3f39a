"""What the fanotify sensors share: the watched containers, found by device (or by mount), the
thread that reads one group's fd in batches until stopped, and a filesystem mark per watched
root with a mount mark per other file system of its container (other_mounts.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from garrison.errors import SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors.fanotify import (
    FAN_CLASS_CONTENT,
    FAN_CLASS_PRE_CONTENT,
    FAN_MARK_ADD,
    FAN_MARK_FILESYSTEM,
    FAN_MARK_MOUNT,
    FAN_MARK_REMOVE,
    FanotifyGroup,
    RawEvent,
)
from garrison.sensors.latency import LatencyHistogram
from garrison.sensors.other_mounts import ContainerMount, container_mounts, mount_id, open_mount
from garrison.sensors.own_filesystem import own_root
from garrison.sensors.passwd import UserNames
from garrison.watchdog import faults, heartbeat

TICK_SECONDS = 0.25
BEAT_SECONDS = 0.25  # a permission reader's beats, events or not (the watchdog's bound is 1 s)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchedRoot:
    """One container's root file system: an overlay with a device of its own (checked)."""

    container_id: str
    merged_dir: str
    dev: int
    users: UserNames
    pid: int = 0  # a process of the container, to reach its own mounts
    mounts: tuple[ContainerMount, ...] = ()  # its other file systems (other_mounts.py)

    @classmethod
    def of(cls, container: ContainerInfo) -> WatchedRoot:
        """The container's root, once checked to be a file system of its own: every sensor
        gives it a filesystem mark, which on anything else would cover the host's."""
        root, dev = own_root(container.id, container.merged_dir)
        users = UserNames(root)
        users.load()
        mounts = container_mounts(container.pid, container.mounts) if container.pid else ()
        return cls(container.id, root, dev, users, container.pid, mounts)

    def container_path(self, path: str) -> str:
        """A path as the container sees it. Links of files opened in the container's mount
        namespace already read that way; a host path under MergedDir loses its prefix."""
        if path.startswith(self.merged_dir):
            return path[len(self.merged_dir) :] or "/"
        return path.removesuffix(" (deleted)")


class RootTable:
    """Watched roots by device and by container id. Readers (the event thread) never take
    the lock: every change publishes a new dict."""

    def __init__(self) -> None:
        self.by_dev: dict[int, WatchedRoot] = {}
        self.by_mount: dict[int, WatchedRoot] = {}  # the containers' other mounts, by id
        self._lock = threading.Lock()

    def add(self, root: WatchedRoot) -> WatchedRoot | None:
        """Add ``root``; the root it replaces (same container), if any."""
        with self._lock:
            old = self.get(root.container_id)
            self._publish(root.container_id, root)
            return old

    def remove(self, container_id: str) -> WatchedRoot | None:
        with self._lock:
            old = self.get(container_id)
            self._publish(container_id, None)
            return old

    def _publish(self, container_id: str, root: WatchedRoot | None) -> None:
        by_dev = {d: r for d, r in self.by_dev.items() if r.container_id != container_id}
        by_mount = {m: r for m, r in self.by_mount.items() if r.container_id != container_id}
        if root is not None:
            by_dev[root.dev] = root
            by_mount.update((m.mount_id, root) for m in root.mounts)
        self.by_dev, self.by_mount = by_dev, by_mount

    def find(self, fd: int, dev: int) -> WatchedRoot | None:
        """The watched container an event's file (``fd``, on device ``dev``) belongs to:
        by its root's device, else by the mount it was reached through."""
        root = self.by_dev.get(dev)
        if root is not None or not self.by_mount:
            return root
        found = mount_id(fd)
        return self.by_mount.get(found) if found is not None else None

    def get(self, container_id: str) -> WatchedRoot | None:
        return next((r for r in self.by_dev.values() if r.container_id == container_id), None)

    def all(self) -> list[WatchedRoot]:
        return list(self.by_dev.values())


class ReaderThread:
    """A daemon thread feeding each batch read from ``group`` to ``handle``, until stop().

    The reader of a group with permission events (``answers``: processes wait on it) beats on
    the watchdog's board after every batch and at least every BEAT_SECONDS while idle."""

    def __init__(
        self,
        name: str,
        group: FanotifyGroup,
        handle: Callable[[RawEvent], None],
        tick: Callable[[], None] | None = None,
        *,
        answers: bool = False,
    ) -> None:
        self.group = group
        self.handle = handle
        self.tick = tick  # called about every TICK_SECONDS, events or not
        self.answers = answers
        self._stopping = False
        self._busy = False  # a batch read and not yet handled
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the thread to end and wait up to ``timeout``; False when it is still stuck
        (in a judge or a sink) — closing the group afterwards still releases every exec."""
        self._stopping = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s did not stop within %.0f s", self._thread.name, timeout)
            return False
        os.close(self._wake_r)
        os.close(self._wake_w)
        return True

    def caught_up(self) -> bool:
        """Every event the kernel had queued when this was called has been handled. The
        kernel's queue is read before the flag: a batch taken between the two is still
        being handled, and says so."""
        if not self._thread.is_alive():
            return True  # stopped, or gave up on a closed group: nothing more comes
        return self.group.pending() == 0 and not self._busy

    def _run(self) -> None:
        beat = heartbeat.claim(self._thread.name) if self.answers else None
        try:
            self._loop(beat)
        finally:
            if beat is not None:
                beat.release()

    def _loop(self, beat: heartbeat.Beat | None) -> None:
        poller = select.poll()
        poller.register(self.group.fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        timeout = None if self.tick is None else int(TICK_SECONDS * 1000)
        if beat is not None:
            timeout = int(BEAT_SECONDS * 1000)
        next_tick = time.monotonic() + TICK_SECONDS
        while not self._stopping:
            if beat is not None:
                beat.beat()
            ready = {fd for fd, _ in poller.poll(timeout)}
            if self._wake_r in ready:
                return
            if self.tick is not None and time.monotonic() >= next_tick:
                next_tick = time.monotonic() + TICK_SECONDS
                self._tick()
            if self.group.fd not in ready:
                continue
            self._busy = True
            try:
                batch = self.group.read()
            except SensorError:
                # Nobody would answer the events still queued: close the group, and the
                # kernel lets them (and every later one) through.
                log.exception("fanotify read failed; the sensor stops and releases its marks")
                self.group.close()
                return
            if faults.HOLD.is_set() and beat is not None:
                _spin()
            for raw in batch:
                self._handle_one(raw)
            self._busy = False

    def _tick(self) -> None:
        try:
            self.tick()  # type: ignore[misc]
        except Exception:
            log.exception("%s: periodic work failed", self._thread.name)

    def _handle_one(self, raw: RawEvent) -> None:
        # The thread must outlive any fault: a dead reader with an open group would leave
        # every exec in the container waiting for an answer forever.
        try:
            self.handle(raw)
        except Exception:
            log.exception("%s: event of pid %d not handled", self._thread.name, raw.pid)


def _spin() -> None:
    """The test hook: hold the events, as a GIL-bound loop would, until the watchdog acts."""
    while True:
        pass


class GroupThread:
    """A fanotify group and the thread reading it: what every fanotify sensor starts and
    stops. ``group`` is None while stopped. ``latency``: how long its permission events
    waited for their answers, across restarts of the group."""

    def __init__(
        self,
        name: str,
        flags: int,
        handle: Callable[[RawEvent], None],
        tick: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.flags = flags
        self.handle = handle
        self.tick = tick
        self.group: FanotifyGroup | None = None
        self._reader: ReaderThread | None = None
        self.latency = LatencyHistogram()

    def start(self, mark_all: Callable[[], None]) -> None:
        """Make the group, start reading, let ``mark_all`` mark what is watched so far. The
        reader runs before the first mark: no event may wait on a group nobody reads."""
        if self.group is not None:
            return
        answers = bool(self.flags & (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT))
        self.group = FanotifyGroup(self.flags, latency=self.latency if answers else None)
        self._reader = ReaderThread(self.name, self.group, self.handle, self.tick, answers=answers)
        self._reader.start()
        try:
            mark_all()
        except BaseException:
            self.stop()
            raise

    def caught_up(self) -> bool:
        """Nothing queued for this group is left unhandled (true while it is stopped)."""
        reader = self._reader
        return reader is None or reader.caught_up()

    def stop(self) -> None:
        """Stop reading and close the group: the kernel lets every waiting event through."""
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        if self.group is not None:
            self.group.close()
            self.group = None


class FilesystemMarks:
    """The watched roots of one group, each with a filesystem mark of ``mask`` on its overlay
    super block while the group runs (``mark_all`` is what ``GroupThread.start`` calls)."""

    def __init__(self, io: GroupThread, mask: int) -> None:
        self.io = io
        self.mask = mask
        self.roots = RootTable()

    def mark_all(self) -> None:
        for root in self.roots.all():
            self._mark(root, FAN_MARK_ADD)

    def add(self, root: WatchedRoot) -> None:
        """Mark ``root`` (again, if its container was watched: a new overlay replaces the old)."""
        old = self.roots.add(root)
        if old is not None and old.dev != root.dev:
            self._unmark(old)
        self._mark(root, FAN_MARK_ADD)

    def remove(self, container_id: str) -> None:
        """Unmark the container's root; a container already gone is fine."""
        old = self.roots.remove(container_id)
        if old is not None:
            self._unmark(old)

    def container_ids(self) -> list[str]:
        return [root.container_id for root in self.roots.all()]

    def _mark(self, root: WatchedRoot, flags: int) -> None:
        if self.io.group is not None:
            self.io.group.mark(flags | FAN_MARK_FILESYSTEM, self.mask, root.merged_dir)
            for mount in root.mounts:
                self._mark_mount(root, mount, flags)

    def _mark_mount(self, root: WatchedRoot, mount: ContainerMount, flags: int) -> None:
        """A mount mark on the container's own mount (other_mounts.py); one gone meanwhile
        is skipped (the container stopped, or unmounted it)."""
        group = self.io.group
        fd = open_mount(root.pid, mount)
        if fd is None or group is None:
            if flags & FAN_MARK_ADD:
                log.warning("%s: %s not marked (gone)", root.container_id[:12], mount.point)
            return
        try:
            # through the descriptor's magic link: fanotify_mark takes no O_PATH dirfd
            group.mark(flags | FAN_MARK_MOUNT, self.mask, f"/proc/self/fd/{fd}")
        except SensorError as exc:
            if flags & FAN_MARK_ADD:
                log.warning("%s: %s not marked: %s", root.container_id[:12], mount.point, exc)
        finally:
            os.close(fd)

    def _unmark(self, root: WatchedRoot) -> None:
        # The overlay may be unmounted already (container removed): its marks went with it.
        with contextlib.suppress(SensorError):
            self._mark(root, FAN_MARK_REMOVE)
