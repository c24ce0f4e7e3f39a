"""What a host keeps of its console in its own data folder, so that it enforces and numbers
its audits right while the console is away — even across a restart of the defender:

- ``link.json``: the link's *epoch* (made once, random) and the highest audit number the
  console acknowledged (its *mark*). Audits are numbered on from the larger of the mark and
  what the spool holds, so a number is never given twice within an epoch.
- ``policies.json``: the policies last pulled (the runtime rules enforced while away).
- ``blocked.json``: the host's blocked containers — the defender's own record of what it
  stopped, written before the kill, as the console's would be.
- ``models.json``: the models last pulled or saved, for a defender that starts while the
  console is away.

Each is written whole or not at all (``_files.write_private``), owner-only.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from garrison.errors import StoreError
from garrison.fleet._files import write_private
from garrison.store.base import BlockedContainer, Doc
from garrison.store.datadir import secure_data_dir

log = logging.getLogger(__name__)

FOLDER = "console"  # in the data folder, with the host's certificate (garrison.fleet.join)


class LocalState:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        secure_data_dir(directory)
        link = self._read("link.json", {})
        self.epoch = str(link.get("epoch") or secrets.token_hex(16))
        self.mark = int(link.get("mark") or 0)
        if not link:
            self.save_mark(0)

    @classmethod
    def in_dir(cls, data_dir: Path) -> LocalState:
        return cls(Path(data_dir) / FOLDER)

    def save_mark(self, mark: int) -> bool:
        """Keep ``mark``; False when it could not be written (the spool is then kept)."""
        self.mark = mark
        return self._write("link.json", {"epoch": self.epoch, "mark": mark})

    def policies(self) -> dict[str, Doc | None]:
        found = self._read("policies.json", {})
        return {str(k): v for k, v in found.items() if v is None or isinstance(v, dict)}

    def save_policies(self, policies: Mapping[str, Doc | None]) -> None:
        self._write("policies.json", dict(policies))

    def blocked(self) -> dict[str, BlockedContainer]:
        records = {}
        for doc in self._read("blocked.json", {}).get("blocked", []):
            try:
                record = BlockedContainer.from_json(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("local blocked record dropped: %r", exc)
                continue
            records[record.container_id] = record
        return records

    def acked_blocks(self) -> set[str]:
        """The blocked containers whose records the console took (a restarted defender sends
        those as updates: one the console has no more was unblocked there meanwhile)."""
        acked = self._read("blocked.json", {}).get("acked", [])
        return {c for c in acked if isinstance(c, str)} if isinstance(acked, list) else set()

    def save_blocked(
        self, records: Mapping[str, BlockedContainer], acked: Iterable[str] = ()
    ) -> None:
        doc = {"blocked": [r.to_json() for r in records.values()], "acked": sorted(acked)}
        self._write("blocked.json", doc)

    def models(self) -> list[Doc]:
        return [d for d in self._read("models.json", {}).get("models", []) if isinstance(d, dict)]

    def save_models(self, docs: list[Doc]) -> None:
        self._write("models.json", {"models": docs})

    def _read(self, name: str, default: dict[str, Any]) -> dict[str, Any]:
        path = self.directory / name
        try:
            found = json.loads(path.read_bytes())
        except FileNotFoundError:
            return default
        except (OSError, ValueError) as exc:
            log.error("%s unreadable, not used: %s", path, exc)
            return default
        return found if isinstance(found, dict) else default

    def _write(self, name: str, doc: dict[str, Any]) -> bool:
        try:
            write_private(self.directory / name, json.dumps(doc, allow_nan=False).encode())
        except (StoreError, ValueError) as exc:
            log.error("%s not kept: %s", name, exc)
            return False
        return True
