"""Which files of an image the inventory reads: everything else is streamed past unread."""

from __future__ import annotations

import posixpath
import re

from garrison.scan.inventory.limits import MAX_DATABASE, MAX_EGG, MAX_MANIFEST, MAX_RELEASE

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
DEBIAN_VERSION = "etc/debian_version"
ALPINE_RELEASE = "etc/alpine-release"
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d/"
APK_INSTALLED = ("lib/apk/db/installed", "usr/lib/apk/db/installed")
DPKG_INFO = "var/lib/dpkg/info/"

EXACT = frozenset((*OS_RELEASE, *APK_INSTALLED, DEBIAN_VERSION, ALPINE_RELEASE, DPKG_STATUS))

# A distribution is one Python can import: its metadata directly in a site-packages or
# dist-packages folder (importlib.metadata's ``MetadataPathFinder`` looks nowhere else). A
# ``.dist-info`` deeper inside a package is a vendored copy (pytest's ``py/_vendored_packages``)
# and a ``.egg-info`` in a source tree or under /tmp a build's leftover: neither is installed.
# Eggs as setuptools' ``setup.py install`` leaves them: a folder holding ``EGG-INFO/PKG-INFO``,
# or the same zipped into one ``.egg`` file.
_PYTHON = re.compile(
    r"(^|/)(site|dist)-packages/[^/]+"
    r"(\.dist-info/METADATA|\.egg-info(/PKG-INFO)?|\.egg/EGG-INFO/PKG-INFO|\.egg)$"
)
_ZIPPED_EGG = re.compile(r"(^|/)(site|dist)-packages/[^/]+\.egg$")
# Only a package's own manifest: node_modules/NAME/package.json or node_modules/@SCOPE/NAME/…;
# a package.json deeper inside a package (a "type": "module" marker) is not a package.
_NPM = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/]+/package\.json$")
# A package.json outside node_modules is kept too: a node_modules entry may be a symlink to
# such a folder (a workspace), whose package.json is then an installed package's.
_PACKAGE_JSON = re.compile(r"(^|/)package\.json$")
# A symlink where a package would be: node_modules/NAME or node_modules/@SCOPE/NAME.
_NPM_LINK = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/]+$")
# A project's lockfile, read when the project has no node_modules; one inside node_modules
# belongs to an installed package, whose dependencies are installed below it.
_NPM_LOCK = re.compile(r"(^|/)(package-lock|npm-shrinkwrap)\.json$")
NODE_MODULES = "node_modules"


def normalize(name: str) -> str:
    """A tar member or rootfs path as a relative path without ``./`` or leading ``/``."""
    path = posixpath.normpath("/" + name).lstrip("/")
    return "" if path == "." else path


def is_wanted(path: str) -> bool:
    """True for a (normalized) rootfs path whose content some parser reads."""
    if path in EXACT:
        return True
    if path.startswith(DPKG_STATUS_D):
        return "/" not in path[len(DPKG_STATUS_D) :]
    if path.startswith(DPKG_INFO):
        return is_file_list(path)
    if _PYTHON.search(path) or _NPM.search(path):
        return True
    if path.endswith(".json") and (_PACKAGE_JSON.search(path) or _NPM_LOCK.search(path)):
        return _outside_node_modules(path)
    return False


def is_python_metadata(path: str) -> bool:
    return bool(_PYTHON.search(path))


def is_zipped_egg(path: str) -> bool:
    return bool(_ZIPPED_EGG.search(path))


def is_file_list(path: str) -> bool:
    """dpkg's list of the files a package installed (``info/NAME.list``), or the md5sums a
    distroless image keeps beside its ``status.d`` stanza (its only list of files)."""
    for folder, suffix in ((DPKG_INFO, ".list"), (DPKG_STATUS_D, ".md5sums")):
        rest = path[len(folder) :] if path.startswith(folder) else ""
        if rest.endswith(suffix) and "/" not in rest:
            return True
    return False


def is_npm_manifest(path: str) -> bool:
    """An installed npm package's own package.json (under node_modules)."""
    return bool(_NPM.search(path))


def is_package_json(path: str) -> bool:
    return bool(_PACKAGE_JSON.search(path))


def is_npm_link(path: str) -> bool:
    """True for a path where a symlink would install a package (node_modules/NAME)."""
    return bool(_NPM_LINK.search(path))


def is_npm_lockfile(path: str) -> bool:
    return bool(_NPM_LOCK.search(path)) and _outside_node_modules(path)


def _outside_node_modules(path: str) -> bool:
    return NODE_MODULES not in path.split("/")


def npm_project(path: str) -> str:
    """The project folder a path under node_modules belongs to: what precedes the first
    node_modules (``app`` for ``app/node_modules/a/node_modules/b``; ``""`` at the root)."""
    at = ("/" + path).find(f"/{NODE_MODULES}/")
    return path[: at - 1] if at > 0 else ""


def is_dpkg_status(path: str) -> bool:
    if path == DPKG_STATUS:
        return True
    return path.startswith(DPKG_STATUS_D) and is_wanted(path) and not is_file_list(path)


def limit_of(path: str) -> int:
    """The most bytes of a wanted file the inventory reads (``limits``); a larger one is
    skipped."""
    if path in APK_INSTALLED or is_dpkg_status(path) or is_file_list(path):
        return MAX_DATABASE
    if is_npm_lockfile(path):  # a large monorepo's runs to tens of MiB
        return MAX_DATABASE
    if is_zipped_egg(path):
        return MAX_EGG
    return MAX_RELEASE if path in EXACT else MAX_MANIFEST
