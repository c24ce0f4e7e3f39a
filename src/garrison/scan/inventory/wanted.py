"""Which files of an image the inventory reads: everything else is streamed past unread."""

from __future__ import annotations

import posixpath
import re

from garrison.scan.inventory.limits import MAX_DATABASE, MAX_MANIFEST, MAX_RELEASE

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
DEBIAN_VERSION = "etc/debian_version"
ALPINE_RELEASE = "etc/alpine-release"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
APK_INSTALLED = ("lib/apk/db/installed", "usr/lib/apk/db/installed")

EXACT = frozenset((*OS_RELEASE, *APK_INSTALLED, DEBIAN_VERSION, ALPINE_RELEASE, DPKG_STATUS))

_PYTHON = re.compile(r"(^|/)[^/]+\.dist-info/METADATA$|(^|/)[^/]+\.egg-info(/PKG-INFO)?$")
# Only a package's own manifest: node_modules/NAME/package.json or node_modules/@SCOPE/NAME/…;
# a package.json deeper inside a package (a "type": "module" marker) is not a package.
_NPM = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/]+/package\.json$")


def normalize(name: str) -> str:
    """A tar member or rootfs path as a relative path without ``./`` or leading ``/``."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def is_wanted(path: str) -> bool:
    """True for a (normalized) rootfs path whose content some parser reads."""
    if path in EXACT:
        return True
    if path.startswith(DPKG_STATUS_D):
        return "/" not in path[len(DPKG_STATUS_D) :] and not path.endswith(".md5sums")
    return bool(_PYTHON.search(path) or _NPM.search(path))


def is_python_metadata(path: str) -> bool:
    return bool(_PYTHON.search(path))


def is_npm_manifest(path: str) -> bool:
    return bool(_NPM.search(path))


def is_dpkg_status(path: str) -> bool:
    return path == DPKG_STATUS or (path.startswith(DPKG_STATUS_D) and is_wanted(path))


def limit_of(path: str) -> int:
    """The most bytes of a wanted file the inventory reads (``limits``); a larger one is
    skipped."""
    if path in APK_INSTALLED or is_dpkg_status(path):
        return MAX_DATABASE
    return MAX_RELEASE if path in EXACT else MAX_MANIFEST
