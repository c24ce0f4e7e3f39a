"""Forensics bundles as the console shows them: those a host kept, and one made on demand.

Bundles live with the defender that captured them, in ``<data dir>/forensics/bundles``: the
console reads the same folder (all-in-one). A bundle made on demand is written where asked,
not kept.
"""

from __future__ import annotations

import time
from pathlib import Path

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.errors import InvalidInput
from garrison.forensics.bundle import Manifest
from garrison.forensics.capture import Capturer, bundle_id, request_for
from garrison.forensics.host import forensics_dir, subject_of
from garrison.forensics.journal import Entry, Journal
from garrison.forensics.library import Library
from garrison.runtime.base import ContainerRuntime
from garrison.store.base import Store
from garrison.store.datadir import secure_data_dir


def library(data_dir: Path | None) -> Library:
    if data_dir is None:
        raise InvalidInput("this console has no data directory, so no forensics bundles")
    secure_data_dir(forensics_dir(data_dir))  # itself 0700, not only the folders in it
    return Library(forensics_dir(data_dir) / "bundles")


def journal_entries(data_dir: Path | None, container_id: str) -> list[Entry]:
    """What the defender journaled of a container, oldest first ([] with no data dir)."""
    if data_dir is None or not container_id:
        return []
    return Journal(forensics_dir(data_dir) / "journal").slice(container_id)


def export_bundle(
    store: Store, data_dir: Path | None, runtime: ContainerRuntime, ref: str, path: Path
) -> Manifest:
    """A bundle of the container ``ref`` (name or id prefix), running or stopped, now."""
    container = runtime.inspect(ref)
    shelf = library(data_dir)
    assert data_dir is not None
    journal = Journal(forensics_dir(data_dir) / "journal")  # read only: never started

    def audits_of(container_id: str, limit: int) -> list[Audit]:
        return store.list_audits(AuditFilter(container=container_id, limit=limit))

    subject = subject_of(container.id, container.name, container.image_name, None)
    subject["reason"] = "captured on demand"
    request = request_for(container, bundle_id(container.id, time.time()), subject)
    return Capturer(runtime, journal, shelf, audits_of).write(request, path)
