"""Forensics on one host, as the defender uses it: the journal it feeds, the bundles it
captures after a block, and their retention.

Everything lives under ``<data dir>/forensics``: ``journal/`` (the ring) and ``bundles/``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from garrison.audit.record import Audit
from garrison.config import Settings
from garrison.forensics import entries
from garrison.forensics.capture import Capturer, Request, bundle_id, request_for
from garrison.forensics.journal import Journal
from garrison.forensics.library import BundleInfo, Library
from garrison.forensics.verify import verify
from garrison.runtime.base import ContainerInfo, ContainerRuntime
from garrison.sensors.events import FileEvent, NetEvent, ProcessEvent
from garrison.store.datadir import secure_data_dir

log = logging.getLogger(__name__)


MIB = 1024 * 1024


def forensics_dir(data_dir: Path) -> Path:
    return data_dir / "forensics"


class HostForensics:
    def __init__(
        self,
        settings: Settings,
        runtime: ContainerRuntime,
        audits_of: Callable[[str, int], list[Audit]],
    ) -> None:
        root = forensics_dir(settings.data_dir)
        secure_data_dir(root)  # itself 0700, not only the folders in it
        self.settings = settings
        self.journal = Journal(root / "journal", settings.forensics_journal_bytes)
        self.library = Library(root / "bundles")
        rate = settings.forensics_export_rate * MIB
        self.capturer = Capturer(runtime, self.journal, self.library, audits_of, rate)
        self.enabled = settings.forensics_capture
        self.captured = 0
        self.failed = 0
        self._last_spawn: dict[str, tuple[int, str]] = {}

    def start(self) -> None:
        """The journal's writer; what a defender before this one left: its half-written
        bundles go (a pending capture is made again whole), old bundles are pruned."""
        self.journal.start()
        for partial in self.library.stale_partials():
            partial.unlink(missing_ok=True)
        for path in self.library.unindexed():  # whole, but killed before its index entry
            manifest = verify(path).manifest
            if manifest is not None:
                self.library.add(manifest)
        self.prune()

    def stop(self) -> None:
        self.capturer.stop()
        self.journal.stop()

    # -- the journal (called on the loop: buffered, never waits on the disk) ---------------

    def saw(self, event: ProcessEvent | FileEvent | NetEvent) -> None:
        if isinstance(event, ProcessEvent):  # judged at its exec, then seen again: one entry
            key = (event.pid, event.path)
            if self._last_spawn.get(event.container_id) == key:
                return
            self._last_spawn[event.container_id] = key
        kind, fields = entries.of_event(event)
        self.journal.record(event.container_id, kind, event.time or time.time(), **fields)

    def audited(self, audit: Audit) -> None:
        self.journal.record(audit.containerId, "audit", audit.time, **entries.of_audit(audit))

    def stopped(self, container_id: str) -> None:
        self.journal.record(container_id, "stop", time.time())
        self._last_spawn.pop(container_id, None)

    def lifecycle(self, container: ContainerInfo, kind: str) -> None:
        self.journal.record(container.id, kind, time.time(), name=container.name,
                            image=container.image_name, pid=container.pid)  # fmt: skip

    # -- bundles ---------------------------------------------------------------------------

    def new_bundle_id(self, container_id: str, when: float) -> str:
        return bundle_id(container_id, when) if self.enabled else ""

    def request(self, container: ContainerInfo, bundle: str, audit: Audit) -> Request:
        """What a block's capture needs; the process tree is read now (before the kill)."""
        subject = subject_of(container.id, container.name, container.image_name, audit)
        return request_for(container, bundle, subject)

    def resumed(self, container_id: str, name: str, image: str, bundle: str) -> Request:
        """A capture a defender before this one left undone (its partial file removed)."""
        Path(f"{self.library.new_path(bundle)}.partial").unlink(missing_ok=True)
        return Request(
            container_id=container_id,
            bundle_id=bundle,
            subject=subject_of(container_id, name, image, None),
            tree_missing="the defender restarted before the capture was done",
        )

    def capture(self, request: Request) -> BundleInfo:
        """Blocking: in a thread. Old bundles are pruned after each new one."""
        info = self.capturer.capture(request)
        self.captured += 1
        self.prune()
        return info

    def prune(self) -> list[str]:
        removed = self.library.prune(
            self.settings.forensics_max_bytes, self.settings.forensics_max_age, time.time()
        )
        if removed:
            log.info("forensics: removed %d old bundle(s): %s", len(removed), ", ".join(removed))
        return removed

    def counters(self) -> dict[str, int]:
        return {"captured": self.captured, "failed": self.failed, **self.journal.counters()}


def subject_of(container_id: str, name: str, image: str, audit: Audit | None) -> dict[str, str]:
    """What a bundle is about, in its manifest; ``audit``: the one that blocked it."""
    subject = {"containerId": container_id, "containerName": name, "imageName": image}
    if audit is not None:
        subject |= {"reason": audit.msg, "attackType": audit.attackType, "rule": audit.ruleName}
    return subject
