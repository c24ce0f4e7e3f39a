"""The console's CA in its store: one CA for every replica of the console on one database,
and the serials it revoked beside it (migration 0004).

The first console to start makes the CA and inserts it only if the store has none; two
replicas starting at once both insert, one wins, and both read back the winner's. A console
made before the CA moved into the store has it in ``DATA_DIR/ca``: that CA is imported once,
with its revoked serials, so its hosts keep their certificates; the folder is left as it was.

The CA's key is in the store unencrypted: the database is as secret as the CA's folder was
(docs/security.md).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path

from garrison.fleet._revoked import Revoked
from garrison.fleet.pki import CA_CERT, ConsoleCA
from garrison.store.base import CARecord, RevokedSerial, Store

log = logging.getLogger(__name__)

FOLDER = "ca"  # DATA_DIR/ca: where a console kept its CA before the store did


class StoreRevocations:
    """The revoked serials of the store's CA (``Revocations``): read from the store at each
    check — a check runs once per certificate per ``service.KNOWN_FOR``, not per request — so
    a revocation by any replica or command holds on every replica at once."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def revoke(self, serial: int, when: datetime, host: str = "") -> bool:
        return self.store.add_revoked_serial(RevokedSerial(str(serial), host, when.timestamp()))

    def is_revoked(self, serial: int) -> bool:
        return self.store.is_serial_revoked(str(serial))

    def entries(self) -> list[Revoked]:
        return [
            Revoked(int(r.serial), datetime.fromtimestamp(r.revoked, UTC))
            for r in self.store.list_revoked_serials()
        ]


def open_ca(store: Store, data_dir: Path) -> ConsoleCA:
    """The store's CA; at the first start, the one in ``data_dir/ca`` imported, or a new one.
    StoreError, InvalidInput when the store's or the folder's is unreadable or corrupt."""
    record = store.get_console_ca()
    if record is None:
        record = _first(store, data_dir / FOLDER)
    return ConsoleCA.from_pem(
        record.cert_pem.encode(), record.key_pem.encode(), StoreRevocations(store)
    )


def _first(store: Store, folder: Path) -> CARecord:
    """The CA this console brings: the folder's, imported, or a new one; then the store's,
    which is another replica's when it stored its own first."""
    if (folder / CA_CERT).exists():
        ca, what = _import(store, folder), f"the console CA of {folder} (the folder is kept)"
    else:
        ca, what = ConsoleCA.make(StoreRevocations(store)), "a new console CA"
    made = ca.credentials()
    mine = CARecord(made.cert_pem.decode(), made.key_pem.decode(), time.time())
    stored = store.add_console_ca(mine)
    if stored.cert_pem == mine.cert_pem:
        log.info("stored %s in the console's store", what)
    else:
        log.info("another console stored its CA first: using it, not %s", what)
    return stored


def _import(store: Store, folder: Path) -> ConsoleCA:
    """The folder's CA, its revoked serials added to the store's (no host: the file kept
    none)."""
    ca = ConsoleCA.load(folder)
    for entry in ca.revoked():
        store.add_revoked_serial(RevokedSerial(str(entry.serial), "", entry.when.timestamp()))
    return ca
