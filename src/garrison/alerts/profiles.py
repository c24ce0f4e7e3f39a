"""Alert profiles: which audits go to which channels, and how often one audit is summarised.

A profile names channels and filters audits by type, attack type, effect and scope (the
collections of runtime rules, matched on the audit's image, container and host). With no
profiles stored, every channel receives every audit (``DEFAULT``).

Aggregation, per profile (1 s to 1 day, default 1 minute): the first alert of an audit is
sent at once; the same finding seen again only adds to the audit's count, and once per
period a summary goes out with how many were folded since the last alert — 1,000 identical
violations in a second are one alert and one summary. A channel routed by several profiles
takes the shortest period among them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from garrison.audit.record import Audit
from garrison.config import parse_duration
from garrison.errors import InvalidInput
from garrison.policy.collections import Collection, Subject, any_matches
from garrison.policy.documents import DocumentError, parse_document
from garrison.policy.limits import Name
from garrison.text import clip

KIND = "alertProfiles"  # the policy kind the document is stored under
MIN_PERIOD, MAX_PERIOD = 1.0, 86400.0
DEFAULT_PERIOD = 60.0
MAX_PROFILES = 200


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    channels: list[Name] = Field(min_length=1, max_length=100)
    types: list[str] = Field(default_factory=list, max_length=20)  # empty: any
    attackTypes: list[str] = Field(default_factory=list, max_length=200)
    effects: list[str] = Field(default_factory=lambda: ["alert", "prevent", "block"])
    scope: list[Collection] = Field(default_factory=list, max_length=100)
    aggregation: str = "1m"

    @field_validator("aggregation")
    @classmethod
    def _period(cls, value: str) -> str:
        seconds = parse_duration(value)
        if not MIN_PERIOD <= seconds <= MAX_PERIOD:
            raise ValueError("an aggregation period runs from 1s to 1d")
        return value

    @property
    def period(self) -> float:
        return parse_duration(self.aggregation)

    def takes(self, audit: Audit) -> bool:
        subject = Subject(image=audit.imageName, container=audit.containerName,
                          host=audit.hostname, labels=audit.labels)  # fmt: skip
        return (
            (not self.types or audit.type in self.types)
            and (not self.attackTypes or audit.attackType in self.attackTypes)
            and audit.effect in self.effects
            and any_matches(self.scope, subject)
        )


class Profiles(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: list[Profile] = Field(default_factory=list, max_length=MAX_PROFILES)

    def route(self, audit: Audit, channel: str) -> float | None:
        """The aggregation period for ``audit`` on ``channel``; None: not sent there."""
        if not self.profiles:
            return DEFAULT_PERIOD
        periods = [p.period for p in self.profiles if channel in p.channels and p.takes(audit)]
        return min(periods) if periods else None


DEFAULT = Profiles()


def load_profiles(text: str, source: str = "profiles") -> Profiles:
    """Profiles from YAML or JSON text: a list, or a mapping with a ``profiles`` list."""
    try:
        data = parse_document(text)
    except DocumentError as exc:
        raise InvalidInput(f"{source}: {exc.problem}") from None
    if isinstance(data, list):
        data = {"profiles": data}
    return profiles_from_doc(data or {}, source)


def profiles_from_doc(doc: Mapping[str, Any] | None, source: str = "stored profiles") -> Profiles:
    if doc is None:
        return DEFAULT
    try:
        return Profiles.model_validate(doc)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "profiles"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{source}: {where}: {clip(message, 300)}") from None
