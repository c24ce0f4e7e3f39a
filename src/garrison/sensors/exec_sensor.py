"""Every exec in a watched container, judged while the caller waits in execve().

One fanotify group (FAN_CLASS_CONTENT) holds a FAN_OPEN_EXEC_PERM filesystem mark on each
container's overlay super block (a mount mark on MergedDir sees nothing: the container has
its own copy of the mount — shared/notes/kernel.md), and a mount mark on the container's own
copy of each of its other mounts, volumes and tmpfs (other_mounts.py). An event names its
container by the device of its fd (each overlay has its own), else by its mount.

A loader run by hand (``ld.so /tmp/x``) is judged as the file it loads; a file with no link
left (a memfd cannot be marked; a deleted file of the root can) as a fileless program.

The kernel raises one event per file an exec opens: the program, then (for a script) its
``#!`` interpreter, then (for a dynamic ELF) the loader ``ld-linux-x86-64.so.2``, all while
``/proc/PID/syscall`` still shows the same execve. Only the first becomes a ProcessEvent;
the loader's inode gets a permanent ignore mark so that later execs cost one round trip.

The verdict path reads /proc and memory only. When the container's policy cannot refuse an
exec (``admit`` says so: no prevent or block anywhere in its process rules), the kernel is
answered as soon as the event is read, and the judge runs after: the caller waits for the
reads, not for the policy. Whatever goes wrong there, the answer is
FAN_ALLOW: a sensor fault must never hang or break a container.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from garrison.errors import GarrisonError, ProcessGone, SensorError
from garrison.runtime.base import ContainerInfo
from garrison.sensors import fanotify as fan
from garrison.sensors.events import (
    ExecAdmit,
    ExecJudge,
    ProcessEvent,
    SensorCounters,
    Verdict,
)
from garrison.sensors.fanotify_loop import FilesystemMarks, GroupThread, WatchedRoot
from garrison.sensors.latency import LatencyHistogram
from garrison.sensors.multicall import is_multicall, is_self_exe
from garrison.sensors.parents import ParentPaths
from garrison.sensors.passwd import open_in_root
from garrison.sensors.procfs import ExecRequest, NotAsleep, ProcFS, Syscall
from garrison.sensors.program import (
    absolute,
    applet_program,
    fileless_name,
    is_loader,
    loader_target,
    sha256_of,
)

log = logging.getLogger(__name__)

ProcessSink = Callable[[ProcessEvent], None]
_MAX_PENDING = 4096
__all__ = ["ExecSensor", "is_loader"]


class ExecSensor:
    """Judges and records every exec in the watched containers' root file systems."""

    def __init__(
        self,
        judge: ExecJudge,
        sink: ProcessSink,
        *,
        admit: ExecAdmit | None = None,
        procfs: ProcFS | None = None,
        ignore_loader: Callable[[str], bool] = lambda container_id: True,
    ) -> None:
        self.judge = judge
        # admit(event) False: nothing could refuse this exec, so the kernel is answered
        # before the judge runs (the caller waits only for the reads the event needs).
        self.admit = admit
        self.sink = sink
        self.procfs = procfs or ProcFS()
        # May the kernel skip the loader of this container's execs (``ignore_loader(container
        # id)``)? Then running it by hand (``ld.so /tmp/x``) is not seen here, only recorded
        # by the process events just after, and judged then as the file it loads. Judging
        # the loader here in containers whose rule can refuse an exec was tried: every dynamic
        # exec then pays a second round trip (an exec storm under a prevent rule ran 1.78
        # times as long), so the defender lets the kernel skip it everywhere.
        self.ignore_loader = ignore_loader
        self.counters = SensorCounters()
        self._io = GroupThread(
            "garrison-exec-sensor",
            fan.FAN_CLASS_CONTENT | fan.FAN_NONBLOCK | fan.FAN_REPORT_TID | fan.FAN_UNLIMITED_MARKS,
            self._handle,
        )
        self._marks = FilesystemMarks(self._io, fan.FAN_OPEN_EXEC_PERM)
        # tid → (syscall, filename) of its last recorded exec: later events of the same
        # execve (interpreter, loader) are recognised by it.
        self._pending: dict[int, tuple[Syscall, str]] = {}
        self._parents = ParentPaths()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def _group(self) -> fan.FanotifyGroup | None:
        return self._io.group

    @property
    def latency(self) -> LatencyHistogram:
        """From each event read to its answer written (the exec waits that long)."""
        return self._io.latency

    def start(self) -> None:
        """Create the group, mark every container watched so far, start the reader thread."""
        self._io.start(self._marks.mark_all)

    def stop(self) -> None:
        """Stop reading and close the group: the kernel lets every waiting exec through."""
        self._io.stop()

    def watch(self, container: ContainerInfo) -> None:
        """Judge execs in ``container`` from now on (again, if it was watched)."""
        self._marks.add(WatchedRoot.of(container))

    def unwatch(self, container_id: str) -> None:
        """Stop judging ``container_id``; a container already gone is fine."""
        self._marks.remove(container_id)

    def watched(self) -> list[str]:
        return self._marks.container_ids()

    def forget_ignores(self) -> None:
        """Drop every ignore mark (rules or a model changed: known files are judged again).
        FAN_MARK_FLUSH without FAN_MARK_FILESYSTEM removes inode marks only (fanotify_mark(2));
        the loader's comes back at its next event."""
        if self._group is not None:
            self._group.mark(fan.FAN_MARK_FLUSH, 0, None)
            self._pending.clear()

    # -- the verdict path ------------------------------------------------------------------

    def _handle(self, raw: fan.RawEvent) -> None:
        if raw.fd < 0:  # FAN_Q_OVERFLOW
            self.counters.drops += 1
            return
        event = self._event_safely(raw)
        try:
            if event is None:
                self._answer(raw, None, Verdict.ALLOW)
            elif self._must_wait(event):
                self._answer(raw, event, self._judge_safely(event))
            else:
                self._answer_first(raw, event)
        finally:
            os.close(raw.fd)
        if event is not None:
            self._emit(event)

    def _must_wait(self, event: ProcessEvent) -> bool:
        if self.admit is None:
            return True
        try:
            return self.admit(event)
        except Exception:
            self.counters.errors += 1
            log.exception("exec admit failed on %s: judged before the answer", event.path)
            return True

    def _answer_first(self, raw: fan.RawEvent, event: ProcessEvent) -> None:
        """Let the exec go on, then judge it: the verdict can only allow (or let the
        kernel skip the file from now on)."""
        self._answer(raw, event, Verdict.ALLOW)
        verdict = self._judge_safely(event)
        if verdict is Verdict.ALLOW_ALWAYS:
            self._ignore_if_requested(raw, event)
        elif verdict is Verdict.DENY:  # the rules changed between admit and judge
            self._count("refused_too_late")

    def _event_safely(self, raw: fan.RawEvent) -> ProcessEvent | None:
        try:
            return self._event(raw)
        except ProcessGone:
            self.counters.late += 1
        except Exception:
            self.counters.errors += 1
            log.exception("exec event of pid %d: allowed unjudged", raw.pid)
        return None

    def _judge_safely(self, event: ProcessEvent) -> Verdict:
        try:
            return self.judge(event)
        except Exception:
            self.counters.errors += 1
            log.exception("exec judge failed on %s: allowed", event.path)
            return Verdict.ALLOW

    def _answer(self, raw: fan.RawEvent, event: ProcessEvent | None, verdict: Verdict) -> None:
        group = self._group
        if group is None:
            return
        if verdict is Verdict.ALLOW_ALWAYS and event is not None:
            # Mark before answering: the next exec of the file may come as soon as this one
            # is let through.
            self._ignore_if_requested(raw, event)
        group.respond(raw.fd, fan.FAN_DENY if verdict is Verdict.DENY else fan.FAN_ALLOW)
        if verdict is Verdict.DENY:
            self._count("denied")

    def _event(self, raw: fan.RawEvent) -> ProcessEvent | None:
        """The ProcessEvent to judge; None for an event that needs no judging."""
        st = os.fstat(raw.fd)
        root = self._marks.roots.find(raw.fd, st.st_dev)
        if root is None:
            self._count("unknown_device")
            return None
        resolved = root.container_path(os.readlink(f"/proc/self/fd/{raw.fd}"))
        try:
            call = self.procfs.waiting_syscall(raw.pid)
        except NotAsleep:
            return self._unread(raw, root, resolved, st)
        request = self.procfs.exec_request(raw.pid, call) if call is not None else None
        if call is None or request is None:
            self._count("not_in_exec")  # a kernel-internal exec, or uselib()
            return None
        if self._is_follow_on(raw, root, call, request, resolved):
            return None
        return self._build(raw, root, request, resolved, st)

    def _unread(
        self, raw: fan.RawEvent, root: WatchedRoot, resolved: str, st: os.stat_result
    ) -> ProcessEvent | None:
        """An exec whose caller never went to sleep in time (held off the CPU): what it asked
        for cannot be read, so it is judged and recorded as the file really executed, with no
        arguments — still judged, never let through unseen."""
        if is_loader(resolved):
            return None  # most likely the loader of an exec judged a moment ago
        request = ExecRequest(resolved, (), args_unread=True)
        return self._build(raw, root, request, resolved, st)

    def _is_follow_on(
        self,
        raw: fan.RawEvent,
        root: WatchedRoot,
        call: Syscall,
        request: ExecRequest,
        resolved: str,
    ) -> bool:
        """The interpreter or loader of an exec already judged (or ignored by the kernel).
        The loader asked for by name (or through a link to it) is a program of its own."""
        key = (call, request.filename)
        loader = is_loader(resolved)
        follow_on = self._pending.get(raw.pid) == key
        if not follow_on and loader:  # the loader of an exec whose file the kernel skipped
            follow_on = not self._asks_for(raw, root, request)
        if follow_on:
            if loader and self.ignore_loader(root.container_id):
                self._ignore(raw.fd, "loader_ignored")
            self._count("follow_on")
            return True
        if len(self._pending) >= _MAX_PENDING:
            self._pending.clear()
        self._pending[raw.pid] = key
        return False

    def _asks_for(self, raw: fan.RawEvent, root: WatchedRoot, request: ExecRequest) -> bool:
        """Does the name the exec asked for lead to the file of this event?"""
        try:
            asked = root.container_path(self.procfs.exec_path(raw.pid, request))
        except (GarrisonError, OSError):
            return False
        return _same_file(root, asked, raw.fd)

    def _build(
        self,
        raw: fan.RawEvent,
        root: WatchedRoot,
        request: ExecRequest,
        resolved: str,
        st: os.stat_result,
    ) -> ProcessEvent:
        tid = raw.pid
        status = self.procfs.status(tid)
        if request.args_unread:
            self._count("unread_args")
        self._parents.forget(status.tgid)  # it runs another program from now on
        path = root.container_path(self.procfs.exec_path(tid, request))
        loader, fileless = "", st.st_nlink == 0
        if fileless:
            path = fileless_name(resolved, "", path)
        elif is_loader(resolved) and (target := loader_target(request.argv)) is not None:
            cwd = root.container_path(self.procfs.cwd(tid))
            loader, path = path, absolute(target, cwd)
            resolved = path
        elif is_multicall(resolved) and request.argv:
            # busybox's shell runs an applet as /proc/self/exe; any name runs the applet
            # argv[0] names (``exec -a nc /bin/ls``): record the applet's name
            asked = resolved if is_self_exe(path) else path
            path = applet_program(root.merged_dir, asked, resolved, request.argv)
        return ProcessEvent(
            container_id=root.container_id,
            pid=status.tgid,
            ppid=status.ppid,
            path=path,
            argv=request.argv,
            uid=status.uid,
            user=root.users.name(status.uid),
            parent_path=self._parent_path(root, status.ppid),
            time=time.time(),
            source="fanotify",
            resolved_path=resolved,
            file_mode=st.st_mode,
            args_unread=request.args_unread,
            fileless=fileless,
            sha256=sha256_of(raw.fd) if fileless else "",
            size=st.st_size if fileless else None,
            loader=loader,
        )

    def _parent_path(self, root: WatchedRoot, ppid: int) -> str:
        """The parent's executable; "" when the parent lives outside the container (runc,
        containerd-shim after a ``docker exec``): its path would name a host file."""
        return self._parents.get(ppid, root.container_id, lambda: self._read_parent(root, ppid))

    def _read_parent(self, root: WatchedRoot, ppid: int) -> str:
        try:
            if os.stat(self.procfs.path(ppid, "root")).st_dev != root.dev:
                return ""
            return root.container_path(self.procfs.exe(ppid))
        except (GarrisonError, OSError):
            return ""

    def _ignore_if_requested(self, raw: fan.RawEvent, event: ProcessEvent) -> None:
        # The event's file may be a script's interpreter when the script itself is ignored
        # already: an ignore mark there would hide every /bin/sh. Mark only the file asked for.
        root = self._marks.roots.find(raw.fd, os.fstat(raw.fd).st_dev)
        if root is not None and _same_file(root, event.path, raw.fd):
            self._ignore(raw.fd, "always_ignored")
        else:
            self._count("always_refused")

    def _ignore(self, fd: int, counter: str) -> None:
        """Let the kernel skip this inode's execs until the file is modified."""
        if self._group is None:
            return
        flags = fan.FAN_MARK_ADD | fan.FAN_MARK_IGNORED_MASK
        try:
            self._group.mark(flags, fan.FAN_OPEN_EXEC_PERM, None, dirfd=fd)
            self._count(counter)
        except SensorError:
            self.counters.errors += 1
            log.exception("ignore mark refused")

    def _emit(self, event: ProcessEvent) -> None:
        self.counters.events += 1
        try:
            self.sink(event)
        except Exception:
            self.counters.errors += 1
            log.exception("process event sink failed")

    def _count(self, name: str) -> None:
        self.counters.extra[name] = self.counters.extra.get(name, 0) + 1


def _same_file(root: WatchedRoot, path: str, fd: int) -> bool:
    try:
        other = open_in_root(root.merged_dir, path)
    except OSError:
        return False
    try:
        a, b = os.fstat(other), os.fstat(fd)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    finally:
        os.close(other)
