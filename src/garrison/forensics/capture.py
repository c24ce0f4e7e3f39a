"""Capturing one container's forensics bundle: what the runtime still has of it, and ours.

The members, smallest first so that a capture cut short keeps the most telling parts:
``inspect.json``, ``audits.json``, ``journal.jsonl``, ``process-tree.json``, ``diff.json``,
``logs.txt``, then ``filesystem.tar`` (``docker export``, streamed) and ``manifest.json``.
Whatever cannot be had — a container removed (``--rm``), a runtime that went away, a disk
that filled — is listed in the manifest's ``missing`` with why; the capture never raises for
the container's sake. ``stop`` (the defender shutting down) ends a capture between chunks:
its partial file is removed and the block's record still says ``pending``, so the next
defender captures again.

Blocking calls throughout: run it in a thread, never on the defender's loop.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.audit.record import Audit
from garrison.errors import ContainerGone, GarrisonError, RuntimeRefused
from garrison.forensics import proctree
from garrison.forensics.bundle import BundleWriter, Manifest
from garrison.forensics.journal import Journal
from garrison.forensics.library import BundleInfo, Library
from garrison.runtime.base import ContainerInfo, ContainerRuntime

log = logging.getLogger(__name__)

LOG_TAIL = 1000  # lines of the container's output
AUDITS_MAX = 1000


class CaptureStopped(GarrisonError):
    """The defender is stopping: the capture was given up, to be done again."""


@dataclass(frozen=True, slots=True)
class Request:
    """One bundle to make. ``known`` is the runtime's description of the container when it
    started (an --rm container has none left once stopped); ``tree`` the processes at the
    violation, or None with ``tree_missing`` saying why."""

    container_id: str
    bundle_id: str
    subject: Mapping[str, Any]
    known: Mapping[str, Any] = field(default_factory=dict)
    tree: list[dict[str, Any]] | None = None
    tree_missing: str = "not taken"


def request_for(container: ContainerInfo, bundle: str, subject: Mapping[str, Any]) -> Request:
    """A capture of ``container`` now: its processes are read at once (before a kill)."""
    return Request(
        container_id=container.id,
        bundle_id=bundle,
        subject=subject,
        known=container.document,
        tree=proctree.snapshot(container.pid) if container.running else None,
        tree_missing="the container was not running",
    )


@contextlib.contextmanager
def lowest_priority() -> Iterator[None]:
    """This thread under SCHED_IDLE, below even nice 19 (Linux schedules threads one by one:
    it runs when nothing else wants the core), and back after: the thread is the default
    executor's, and goes on to other work. Only as root, who may raise a thread's priority
    again (CAP_SYS_NICE); others are left as they are."""
    if os.geteuid() != 0:
        yield
        return
    thread = threading.get_native_id()
    policy, nice = os.sched_getscheduler(thread), os.getpriority(os.PRIO_PROCESS, thread)
    os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
    try:
        yield
    finally:
        with contextlib.suppress(PermissionError):
            os.sched_setscheduler(thread, policy, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, thread, nice)


def bundle_id(container_id: str, when: float) -> str:
    """``<12 hex of the container>-<UTC time>``: sorts by container, then by time."""
    stamp = dt.datetime.fromtimestamp(when, tz=dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{container_id[:12]}-{stamp}"


class Capturer:
    def __init__(
        self,
        runtime: ContainerRuntime,
        journal: Journal,
        library: Library,
        audits_of: Callable[[str, int], list[Audit]],
        export_rate: float = 0.0,
    ) -> None:
        self.runtime = runtime
        self.export_rate = export_rate  # bytes a second read of an export; 0: as fast as it comes
        self.journal = journal
        self.library = library
        self.audits_of = audits_of
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def capture(self, request: Request) -> BundleInfo:
        """Make the bundle and keep it in the library. Raises CaptureStopped, and
        GarrisonError when the bundle itself cannot be written (the disk, the folder)."""
        return self.library.add(self.write(request, self.library.new_path(request.bundle_id)))

    def write(self, request: Request, path: Path) -> Manifest:
        """Make the bundle at ``path`` (written beside it, renamed when whole), on this thread
        at the lowest CPU priority: the gzip of a whole file system is seconds of a core, and
        the threads that answer the kernel, and the other containers, come first."""
        with lowest_priority(), BundleWriter(path, request.bundle_id, request.subject) as writer:
            present = self._inspect(writer, request)
            self._ours(writer, request)
            if present:
                self._runtime_parts(writer, request.container_id)
            else:
                gone = "the container was removed before it could be captured"
                for name in ("diff.json", "logs.txt", "filesystem.tar"):
                    writer.missing(name, gone)
            self._check_stop()
            return writer.finish()

    def _inspect(self, writer: BundleWriter, request: Request) -> bool:
        """``inspect.json``: as the runtime has it now, else as it was at the start; False
        when the container is gone."""
        try:
            writer.add_json("inspect.json", self.runtime.inspect_document(request.container_id))
            return True
        except ContainerGone:
            if request.known:
                writer.add_json("inspect.json", dict(request.known))
                writer.add_json("inspect-note.json", {"taken": "when the container started"})
            else:
                writer.missing("inspect.json", "the container was removed; never inspected")
            return False
        except GarrisonError as exc:
            writer.missing("inspect.json", str(exc))
            return True  # the runtime may answer the rest

    def _ours(self, writer: BundleWriter, request: Request) -> None:
        """What Garrison itself saw: its audits, its journal, the process tree."""
        try:
            audits = self.audits_of(request.container_id, AUDITS_MAX)
            writer.add_json("audits.json", [a.to_json() for a in audits])
        except GarrisonError as exc:
            writer.missing("audits.json", f"the store could not be read: {exc}")
        entries = sorted(self.journal.slice(request.container_id), key=lambda e: e["time"])
        writer.add_bytes("journal.jsonl", "".join(json.dumps(e) + "\n" for e in entries).encode())
        if request.tree is None:
            writer.missing("process-tree.json", request.tree_missing)
        else:
            writer.add_json("process-tree.json", request.tree)

    def _runtime_parts(self, writer: BundleWriter, container_id: str) -> None:
        self._optional(writer, "diff.json", lambda: writer.add_json(
            "diff.json", self.runtime.diff(container_id)))  # fmt: skip
        self._optional(writer, "logs.txt", lambda: writer.add_bytes(
            "logs.txt", self.runtime.logs(container_id, LOG_TAIL)))  # fmt: skip
        self._check_stop()
        writer.add_stream("filesystem.tar", self._export(container_id))

    def _optional(self, writer: BundleWriter, name: str, add: Callable[[], None]) -> None:
        try:
            add()
        except ContainerGone as exc:
            writer.missing(name, f"the container was removed: {exc}")
        except GarrisonError as exc:
            writer.missing(name, str(exc))

    def _export(self, container_id: str) -> Iterator[bytes]:
        started, read = time.monotonic(), 0
        try:
            for chunk in self.runtime.export(container_id):
                self._check_stop()
                yield chunk
                read += len(chunk)
                self._pace(started, read)
        except ContainerGone as exc:  # an --rm container, removed once stopped
            raise ContainerGone(container_id, f"the container was removed: {exc}") from exc
        except RuntimeRefused as exc:
            if "remov" not in str(exc).lower():  # "removal in progress"
                raise
            raise ContainerGone(container_id, f"the container was being removed: {exc}") from exc

    def _pace(self, started: float, read: int) -> None:
        """Read no faster than ``export_rate``: dockerd builds the tar as fast as it is read,
        on the CPU the containers and the defender need (the pause ends early at a stop)."""
        if self.export_rate > 0:
            ahead = started + read / self.export_rate - time.monotonic()
            if ahead > 0:
                self._stop.wait(ahead)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise CaptureStopped("the defender is stopping; the capture will be done again")
