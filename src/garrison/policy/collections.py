"""Collections: the scopes of rules (runtime, vulnerability and compliance alike).

A collection names images, containers, hosts, labels (``key:value``) and namespaces.
Each list holds patterns with ``*`` wildcards anywhere (prefix, suffix, both, middle);
a pattern starting with ``-`` excludes. A field matches when some plain pattern matches
and no exclusion does; a field with only exclusions matches everything else. An empty
list means "any". A collection matches a subject when every field matches.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from garrison.policy.limits import Name, Pattern


class Collection(BaseModel):
    """A named scope."""

    model_config = ConfigDict(extra="forbid")

    name: Name = "All"
    images: list[Pattern] = Field(default_factory=lambda: ["*"])
    containers: list[Pattern] = Field(default_factory=lambda: ["*"])
    hosts: list[Pattern] = Field(default_factory=lambda: ["*"])
    labels: list[Pattern] = Field(default_factory=lambda: ["*"])
    namespaces: list[Pattern] = Field(default_factory=lambda: ["*"])


@dataclass(frozen=True, slots=True)
class Subject:
    """What a scope is matched against: one container (or an image about to run)."""

    image: str
    container: str = ""
    host: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace: str = ""


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def pattern_matches(pattern: str, value: str) -> bool:
    """``*`` matches any run of characters (also ``/`` and ``:``); nothing else is special."""
    if "*" not in pattern:
        return pattern == value
    escaped = "*".join(_escape(part) for part in pattern.split("*"))
    return _compiled(escaped).match(value) is not None


def _escape(text: str) -> str:
    return text.replace("[", "[[]").replace("?", "[?]")


def field_matches(patterns: Sequence[str], values: Sequence[str]) -> bool:
    """True when some value matches an inclusion (or there are none) and none is excluded."""
    if not patterns:
        return True
    includes = [p for p in patterns if not p.startswith("-")]
    excludes = [p[1:] for p in patterns if p.startswith("-")]
    if any(pattern_matches(p, v) for p in excludes for v in values):
        return False
    if not includes:
        return True
    return any(pattern_matches(p, v) for p in includes for v in values)


def image_names(image: str) -> list[str]:
    """An image matches with and without its default tag and registry prefix."""
    names = [image]
    if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
        names.append(f"{image}:latest")
    for prefix in ("docker.io/", "docker.io/library/"):
        if image.startswith(prefix):
            names.append(image[len(prefix) :])
    return names


def matches(collection: Collection, subject: Subject) -> bool:
    """Does ``collection`` cover ``subject``?"""
    label_values = [f"{k}:{v}" for k, v in subject.labels.items()] or [""]
    return (
        field_matches(collection.images, image_names(subject.image))
        and field_matches(collection.containers, [subject.container])
        and field_matches(collection.hosts, [subject.host])
        and field_matches(collection.labels, label_values)
        and field_matches(collection.namespaces, [subject.namespace])
    )


def any_matches(collections: Sequence[Collection], subject: Subject) -> bool:
    """A rule's scope is a list of collections; it covers a subject any one covers."""
    return not collections or any(matches(c, subject) for c in collections)
