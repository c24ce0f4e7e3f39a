"""The console link: the only way a defender reports to, and hears from, its console.

In-process now (``InProcessLink``); an HTTP link comes with multi-host. The ``report_*`` and
``save_models``/``delete_models`` calls never block on the store: they are buffered and
written by a writer thread. The other calls are synchronous: make them off the hot path.

A defender's loop, in short (``sync_models`` does the model part)::

    book.load(link.load_models())
    every second:
        sync_models(book, link)
        link.report_status(status_doc)
    at shutdown:
        link.close()            # flushes: no audit is lost
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from garrison.audit.record import Audit
from garrison.model.book import ModelBook
from garrison.model.commands import ModelCommand
from garrison.store.base import BlockedContainer, Doc

log = logging.getLogger(__name__)


class ConsoleLink(Protocol):
    # Buffered: return at once.
    def report_audit(self, audit: Audit) -> None: ...
    def save_models(self, docs: Sequence[Mapping[str, Any]]) -> None: ...
    def delete_models(self, profile_ids: Sequence[str]) -> None: ...
    def report_status(self, doc: Mapping[str, Any]) -> None: ...

    # Synchronous.
    def store_audit(self, audit: Audit) -> Audit:
        """Write one audit now and return it as stored (with its id), e.g. to name it in
        a blocked-container record."""
        ...

    def load_models(self) -> list[Doc]: ...
    def model_updates(self) -> list[Doc]:
        """Models other hosts changed since the last call, as the console merged them (none
        for a console in this process: no other host reports to it)."""
        ...

    def get_policy(self, kind: str) -> Doc | None: ...
    def pending_model_commands(self) -> list[ModelCommand]: ...
    def finish_model_commands(self, ids: Sequence[int]) -> None: ...
    def begin_block(self, record: BlockedContainer, audit: Audit) -> BlockedContainer:
        """Store the block's audit and its pending record at once (before the kill)."""
        ...

    def add_blocked(self, record: BlockedContainer) -> None: ...
    def remove_blocked(self, container_id: str) -> bool: ...
    def list_blocked(self) -> list[BlockedContainer]: ...
    def unblocked_at_console(self) -> list[BlockedContainer]:
        """Blocks ended elsewhere (a console of many hosts) whose containers' restart policies
        the defender restores; none when the store is this host's own."""
        ...

    def audits_of(self, container_id: str, limit: int) -> list[Audit]:
        """The container's newest audits (for a forensics bundle)."""
        ...

    def counters(self) -> dict[str, int]:
        """Audits written, dropped, waiting, replayed; write and spool errors (status)."""
        ...

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything reported so far is stored; False on timeout."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Flush, then stop. Reports after close raise StoreError."""
        ...


def sync_models(book: ModelBook, link: ConsoleLink) -> None:
    """Take in what other hosts learned, apply queued user commands, move models on with
    time, save what changed."""
    for doc in link.model_updates():
        book.absorb(doc)
    commands = link.pending_model_commands()
    for command in commands:
        # A command for a model this defender does not hold is stale (the model expired
        # or never existed here): it is finished all the same, not retried forever.
        if not book.apply(command):
            log.info(
                "model command %s for unknown model %s dropped", command.op, command.profile_id
            )
    if commands:
        link.finish_model_commands([c.id for c in commands if c.id is not None])
    removed = book.tick()
    if removed:
        link.delete_models(removed)
    changed = book.changed()
    if changed:
        link.save_models(changed)
