"""The audit: one record of something Garrison saw or did, in the shape Prisma Cloud users know.

Field names in JSON (``to_json``) are the interface users' scripts depend on: keep them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from garrison.audit.mitre import mitre_of

# "defender": Garrison about itself (a stall the watchdog ended, a defender that crashed).
AuditType = Literal["processes", "network", "filesystem", "vulnerability", "compliance", "defender"]
Effect = Literal["alert", "prevent", "block", "allow"]


@dataclass(frozen=True, slots=True)
class Audit:
    time: float  # epoch seconds
    hostname: str
    type: AuditType
    attackType: str
    effect: Effect
    msg: str
    containerId: str = ""
    containerName: str = ""
    imageName: str = ""
    imageId: str = ""
    ruleName: str = ""
    pid: int = 0
    processPath: str = ""
    parentPath: str = ""  # processes: the parent's executable, when known
    filePath: str = ""  # filesystem: the file written
    remoteIP: str = ""  # network: the address connected to ("" for a listening port)
    port: int = 0  # network: the port connected to, or the port listened on
    command: str = ""
    user: str = ""
    profileId: str = ""  # the model id
    # The container's labels when it was seen (what alert profiles' label scopes match).
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    bundle: str = ""  # a block's forensics bundle (docs/forensics.md); "" for none
    count: int = 1
    id: int | None = None  # assigned by the store

    def key(self) -> tuple[str, ...]:
        """Audits with the same key are one finding seen again: the store adds to count."""
        return (
            self.containerId,
            self.type,
            self.attackType,
            self.effect,
            self.processPath,
            self.msg,
        )

    def fields(self) -> dict[str, Any]:
        """Every field by name, as ``dataclasses.asdict`` gives them (labels copied), without
        its deep copy of each value: a console stores thousands of audits a second."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["labels"] = dict(self.labels)
        return data

    def to_json(self) -> dict[str, Any]:
        data = self.fields()
        data["time"] = (
            dt.datetime.fromtimestamp(self.time, tz=dt.UTC).isoformat().replace("+00:00", "Z")
        )
        mitre = mitre_of(self.attackType)
        data["mitreTactic"] = mitre.tactic_text if mitre else ""
        data["mitreTechnique"] = mitre.technique_text if mitre else ""
        return data

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Audit:
        """The audit ``to_json`` gave (as the REST API answers it): its time back to epoch
        seconds, the ATT&CK fields left out (they follow from ``attackType``)."""
        fields = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        fields["time"] = epoch(doc["time"])
        fields["labels"] = dict(doc.get("labels") or {})
        return cls(**fields)


def epoch(when: str | float) -> float:
    """Epoch seconds of a time as ``to_json`` writes it (ISO 8601 in UTC), or as stored."""
    if isinstance(when, str):
        return dt.datetime.fromisoformat(when).timestamp()
    return float(when)
