"""The incident: audits of one container that tell one story, in order.

Field names in JSON (``to_json``) are an interface users' scripts depend on: keep them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from garrison.audit.mitre import mitre_of
from garrison.audit.query import MAX_LIMIT
from garrison.audit.record import Audit, epoch
from garrison.errors import InvalidInput
from garrison.text import clip

IncidentState = Literal["open", "archived"]
STATES: tuple[IncidentState, ...] = ("open", "archived")

_TITLES = {
    "writtenThenExecuted": "{subject} was written in the container, then run",
    "processThenConnection": "{subject}, not a program of the model, connected out",
    "cryptoMiner": "crypto miner {subject}",
    "reverseShell": "reverse shell {subject}",
    "portScan": "port scan by {subject}",
    "shellFromServer": "a shell started by a server: {subject}",
}


@dataclass(frozen=True, slots=True)
class Incident:
    kind: str
    anchor: str  # what keys it within its container: a program, a parent > shell, "ports"
    containerId: str
    containerName: str
    imageName: str
    hostname: str
    firstTime: float
    lastTime: float
    state: IncidentState = "open"
    auditIds: tuple[int, ...] = ()
    id: int | None = None  # assigned by the store

    @property
    def subject(self) -> str:
        if self.anchor == "ports":
            return "connections to many ports"
        subject = self.anchor.partition(":")[2]
        return subject.replace(">", " started ") if self.kind == "shellFromServer" else subject

    @property
    def title(self) -> str:
        return _TITLES.get(self.kind, "{subject}").format(subject=self.subject)

    def to_json(self, story: Sequence[Audit] = ()) -> dict[str, Any]:
        """The incident; with ``story`` (its audits, in order) each step and the tactics."""
        data = dataclasses.asdict(self)
        data["auditIds"] = list(self.auditIds)
        data["firstTime"] = iso(self.firstTime)
        data["lastTime"] = iso(self.lastTime)
        data["title"] = self.title
        data["tactics"] = tactics(story)
        if story:
            data["story"] = [a.to_json() for a in story]
        return data

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Incident:
        """The incident ``to_json`` gave (its title, tactics and story left out)."""
        fields = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        fields["firstTime"] = epoch(doc["firstTime"])
        fields["lastTime"] = epoch(doc["lastTime"])
        fields["auditIds"] = tuple(int(i) for i in doc.get("auditIds") or ())
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Every field set must match; the most recent first, at most ``limit`` (0: all).
    ``container`` is a container name or id prefix."""

    state: str = ""
    container: str = ""
    kind: str = ""
    limit: int = 100

    def __post_init__(self) -> None:
        if self.state and self.state not in STATES:
            raise InvalidInput(
                f"incident state must be open or archived, not {clip(self.state, 30)!r}"
            )
        if not 0 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 0 (no limit) to {MAX_LIMIT:,}")

    def matches(self, incident: Incident) -> bool:
        name = incident.containerName.removeprefix("/")
        return (
            (not self.state or incident.state == self.state)
            and (not self.kind or incident.kind == self.kind)
            and (
                not self.container
                or incident.containerId.startswith(self.container)
                or name == self.container.removeprefix("/")
            )
        )


def tactics(story: Sequence[Audit]) -> list[str]:
    """The ATT&CK tactics of a story, in the order they first appear."""
    found: list[str] = []
    for audit in story:
        mitre = mitre_of(audit.attackType)
        if mitre is not None and mitre.tactic_text not in found:
            found.append(mitre.tactic_text)
    return found


def iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, tz=dt.UTC).isoformat().replace("+00:00", "Z")
