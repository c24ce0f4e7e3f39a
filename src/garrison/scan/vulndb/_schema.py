"""Pydantic models of the part of the OSV schema Garrison reads.

Reference: https://ossf.github.io/osv-schema/ (schema 1.6). Unknown fields are allowed, as the
schema grows; the fields used here are checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

RangeType = Literal["ECOSYSTEM", "SEMVER", "GIT"]
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class OsvEvent(_Model):
    introduced: str | None = None
    fixed: str | None = None
    last_affected: str | None = None
    limit: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> OsvEvent:
        present = [k for k in EVENT_KINDS if getattr(self, k) is not None]
        if len(present) != 1:
            raise ValueError(f"an event needs exactly one of {EVENT_KINDS}, got {present}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in EVENT_KINDS if getattr(self, k) is not None)

    @property
    def version(self) -> str:
        return str(getattr(self, self.kind))


class OsvRange(_Model):
    type: RangeType
    repo: str | None = None
    events: list[OsvEvent] = Field(min_length=1)


class OsvPackage(_Model):
    ecosystem: str = Field(min_length=1)
    name: str = Field(min_length=1)
    purl: str | None = None


class OsvSeverity(_Model):
    type: str
    score: str


class OsvAffected(_Model):
    package: OsvPackage | None = None
    severity: list[OsvSeverity] = []
    ranges: list[OsvRange] = []
    versions: list[str] = []
    ecosystem_specific: dict[str, Any] | None = None
    database_specific: dict[str, Any] | None = None


class OsvRecord(_Model):
    id: str = Field(min_length=1)
    modified: AwareDatetime
    published: datetime | None = None
    withdrawn: datetime | None = None
    schema_version: str | None = None
    aliases: list[str] = []
    related: list[str] = []
    summary: str = ""
    details: str = ""
    severity: list[OsvSeverity] = []
    affected: list[OsvAffected] = []
    database_specific: dict[str, Any] | None = None
