"""An Inventory from the wanted files of a root file system, whatever read them."""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Mapping

from garrison.scan.inventory import apk, dpkg, npm, npm_lock, python
from garrison.scan.inventory.osinfo import detect_os, oversized
from garrison.scan.inventory.owners import owned_metadata
from garrison.scan.inventory.parsed import Parsed
from garrison.scan.inventory.wanted import (
    APK_INSTALLED,
    DPKG_STATUS,
    is_dpkg_status,
    is_npm_lockfile,
    is_npm_manifest,
    is_package_json,
    is_python_metadata,
    is_zipped_egg,
    normalize,
    npm_project,
)
from garrison.scan.types import Inventory


def inventory_from_files(
    files: Mapping[str, bytes],
    image_id: str = "",
    image_name: str = "",
    skipped: Iterable[str] = (),
    npm_links: Mapping[str, str] | None = None,
) -> Inventory:
    """Parse every package database found in ``files`` (rootfs path → content; leading ``/``
    or ``./`` allowed). ``skipped`` carries records already dropped upstream (corrupt
    layers); each garbled record found here is added to it with why. ``npm_links`` are the
    symlinked npm packages (``Rootfs.npm_links``: link → folder)."""
    tree = {normalize(path): data for path, data in files.items()}
    links = {normalize(k): normalize(v) for k, v in (npm_links or {}).items()}
    os_info = detect_os(tree)
    parsed = Parsed(skipped=[*skipped, *oversized(tree)])
    if os_info.family == "unknown":
        parsed.skipped.append("os: unknown (no os-release, debian_version or alpine-release)")
    parsed.extend(_dpkg(tree))
    parsed.extend(_apk(tree))
    parsed.extend(_language(tree, links))
    return Inventory(image_id, image_name, os_info, tuple(parsed.packages), tuple(parsed.skipped))


def _language(tree: Mapping[str, bytes], links: Mapping[str, str]) -> Parsed:
    """Python and npm packages, less those a system package installed (``owners``): their
    system package is in the inventory already, matched with its distribution's advisories."""
    owned = owned_metadata(tree)
    mine = {path: data for path, data in tree.items() if path not in owned}
    parsed = _each(mine, is_zipped_egg, python.parse_zipped_egg)
    parsed.extend(_each(mine, _unzipped_python, python.parse_metadata))
    parsed.extend(_each(mine, is_npm_manifest, npm.parse_package_json))
    parsed.extend(_each(_linked(mine, links), is_package_json, npm.parse_package_json))
    parsed.extend(_lockfiles(mine, links))
    return parsed


def _linked(tree: Mapping[str, bytes], links: Mapping[str, str]) -> dict[str, bytes]:
    """The package.json of each folder a node_modules symlink installs, once, at the folder
    (as ``npm query`` places a workspace); one under node_modules is listed already (pnpm's
    ``node_modules/.pnpm/…`` store)."""
    wanted = {f"{folder}/package.json" for folder in links.values()}
    return {p: tree[p] for p in wanted if p in tree and not is_npm_manifest(p)}


def _lockfiles(tree: Mapping[str, bytes], links: Mapping[str, str]) -> Parsed:
    """Lockfiles of the projects that hold no node_modules (with one, what is installed is
    read instead); npm-shrinkwrap.json first where a project has both, as npm reads it."""
    installed = {npm_project(p) for p in (*filter(is_npm_manifest, tree), *links)}
    chosen: dict[str, str] = {}
    for path in sorted(filter(is_npm_lockfile, tree)):  # npm-shrinkwrap sorts before package-lock
        folder = posixpath.dirname(path)
        if folder not in installed:
            chosen.setdefault(folder, path)
    parsed = Parsed()
    for path in sorted(chosen.values()):
        parsed.extend(npm_lock.parse_lockfile(tree[path], path, tree))
    return parsed


def _unzipped_python(path: str) -> bool:
    return is_python_metadata(path) and not is_zipped_egg(path)


def _dpkg(tree: Mapping[str, bytes]) -> Parsed:
    parsed = Parsed()
    for path in sorted(p for p in tree if is_dpkg_status(p)):
        parsed.extend(dpkg.parse_status(tree[path], path, status_d=path != DPKG_STATUS))
    return parsed


def _apk(tree: Mapping[str, bytes]) -> Parsed:
    # Newer Alpine keeps the database under usr/ and links lib/apk/db to it: read it once.
    path = next((p for p in APK_INSTALLED if p in tree), None)
    return apk.parse_installed(tree[path], path) if path else Parsed()


def _each(
    tree: Mapping[str, bytes],
    wanted: Callable[[str], bool],
    parse: Callable[[bytes, str], Parsed],
) -> Parsed:
    parsed = Parsed()
    for path in sorted(p for p in tree if wanted(p)):
        parsed.extend(parse(tree[path], path))
    return parsed
