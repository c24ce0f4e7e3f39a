"""Naming models the way users do: by image name, image id, or profile id."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from garrison.errors import InvalidInput, NotFound
from garrison.policy.collections import image_names
from garrison.store.base import Doc

MIN_ID_PREFIX = 4


def _ids(value: str) -> list[str]:
    bare = value.removeprefix("sha256:")
    return [bare, f"sha256:{bare}"]


def _id_matches(ref: str, value: str) -> bool:
    if len(ref.removeprefix("sha256:")) < MIN_ID_PREFIX or not value:
        return False
    return any(value.startswith(r) for r in _ids(ref))


def matches(doc: Doc, ref: str) -> bool:
    """Does the reference name this model: image name (``nginx`` is ``nginx:latest``),
    image id or profile id, or a prefix of at least 4 characters of either id?"""
    names = set(image_names(str(doc.get("imageName", ""))))
    if names & set(image_names(ref)):
        return True
    return _id_matches(ref, str(doc.get("imageId", ""))) or _id_matches(
        ref, str(doc.get("profileId", ""))
    )


def find(docs: Sequence[Doc], ref: str) -> list[Doc]:
    """The models a reference names; an exact profile id names only its own model."""
    if not ref.strip():
        raise InvalidInput("name a model: an image name, an image id or a profile id")
    exact = [d for d in docs if d.get("profileId") == ref]
    found = exact or [d for d in docs if matches(d, ref)]
    if not found:
        raise NotFound(f"no model for {ref!r} (garrison models list shows them)")
    return found


def find_one(docs: Sequence[Doc], ref: str) -> Doc:
    found = find(docs, ref)
    if len(found) > 1:
        ids = ", ".join(str(d.get("profileId")) for d in found)
        raise InvalidInput(f"{ref!r} names {len(found)} models ({ids}): give a profile id")
    return found[0]


def summary(doc: Doc, host_counts: Mapping[str, int]) -> dict[str, Any]:
    """One line of ``garrison models list``; ``host_counts``: hosts that saved each model."""
    return {
        "profileId": doc.get("profileId"),
        "imageName": doc.get("imageName"),
        "imageId": doc.get("imageId"),
        "state": doc.get("state"),
        "learnedSeconds": doc.get("learnedSeconds"),
        "learningTarget": doc.get("learningTarget"),
        "runningContainers": len(doc.get("runningContainers", [])),
        "processes": len(doc.get("processes", [])),
        "listeningPorts": len(doc.get("listening", [])),
        "outboundPorts": len(doc.get("outboundPorts", [])),
        "writtenPaths": len(doc.get("writtenPaths", [])),
        "created": doc.get("created"),
        "hostCount": host_counts.get(str(doc.get("profileId")), 0),
    }
