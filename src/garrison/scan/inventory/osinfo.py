"""The image's distribution, from os-release (freedesktop ``os-release(5)``: ``etc/os-release``
first, ``usr/lib/os-release`` as fallback) and the distributions' own release files, which
carry the point release (``/etc/debian_version`` says 12.7 where os-release says 12).

A release file larger than ``MAX_RELEASE`` is not one: it is left out (``oversized`` names it).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from garrison.scan.inventory.limits import MAX_RELEASE, too_large
from garrison.scan.inventory.wanted import ALPINE_RELEASE, DEBIAN_VERSION, OS_RELEASE
from garrison.scan.types import OSInfo

UNKNOWN = OSInfo("unknown", "")
RELEASE_FILES = (*OS_RELEASE, DEBIAN_VERSION, ALPINE_RELEASE)


def detect_os(files: Mapping[str, bytes]) -> OSInfo:
    files = {p: files[p] for p in RELEASE_FILES if p in files and len(files[p]) <= MAX_RELEASE}
    release = next((parse_os_release(files[p]) for p in OS_RELEASE if p in files), {})
    family = release.get("ID", "").lower() or _family_from_release_files(files)
    if not family:
        return UNKNOWN
    version = _point_release(family, files) or release.get("VERSION_ID", "")
    return OSInfo(family, version, release.get("PRETTY_NAME") or release.get("NAME", ""))


def oversized(files: Mapping[str, bytes]) -> list[str]:
    """A skipped note for each release file left out for its size."""
    notes = (too_large(p, len(files[p]), MAX_RELEASE) for p in RELEASE_FILES if p in files)
    return [note for note in notes if note]


def parse_os_release(data: bytes) -> dict[str, str]:
    """KEY=VALUE lines with shell quoting; lines that do not parse are ignored, as systemd
    does. Nothing is read of a file larger than ``MAX_RELEASE`` (``shlex`` takes time in the
    square of a line's length: five megabytes, five minutes)."""
    values: dict[str, str] = {}
    if len(data) > MAX_RELEASE:
        return values
    for line in data.decode("utf-8", errors="replace").splitlines():
        key, sep, raw = line.strip().partition("=")
        if not sep or not key.isidentifier():
            continue
        try:
            words = shlex.split(raw)
        except ValueError:
            continue
        values[key] = " ".join(words)
    return values


def _family_from_release_files(files: Mapping[str, bytes]) -> str:
    if DEBIAN_VERSION in files:
        return "debian"
    return "alpine" if ALPINE_RELEASE in files else ""


def _point_release(family: str, files: Mapping[str, bytes]) -> str:
    path = {"debian": DEBIAN_VERSION, "alpine": ALPINE_RELEASE}.get(family)
    if path is None or path not in files:
        return ""
    first = files[path].decode("utf-8", errors="replace").strip().split("\n")[0].strip()
    # testing and unstable say "trixie/sid": no release number, os-release decides.
    return first if first[:1].isdigit() else ""
