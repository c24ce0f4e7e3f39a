"""The audit: one record of something Garrison saw or did, in the shape Prisma Cloud users know.

Field names in JSON (``to_json``) are the interface users' scripts depend on: keep them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

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
    command: str = ""
    user: str = ""
    profileId: str = ""  # the model id
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

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["time"] = (
            dt.datetime.fromtimestamp(self.time, tz=dt.UTC).isoformat().replace("+00:00", "Z")
        )
        return data
