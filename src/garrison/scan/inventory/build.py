"""An Inventory from the wanted files of a root file system, whatever read them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from garrison.scan.inventory import apk, dpkg, npm, python
from garrison.scan.inventory.osinfo import detect_os, oversized
from garrison.scan.inventory.owners import owned_metadata
from garrison.scan.inventory.parsed import Parsed
from garrison.scan.inventory.wanted import (
    APK_INSTALLED,
    DPKG_STATUS,
    is_dpkg_status,
    is_npm_manifest,
    is_python_metadata,
    is_zipped_egg,
    normalize,
)
from garrison.scan.types import Inventory


def inventory_from_files(
    files: Mapping[str, bytes],
    image_id: str = "",
    image_name: str = "",
    skipped: Iterable[str] = (),
) -> Inventory:
    """Parse every package database found in ``files`` (rootfs path → content; leading ``/``
    or ``./`` allowed). ``skipped`` carries records already dropped upstream (corrupt
    layers); each garbled record found here is added to it with why."""
    tree = {normalize(path): data for path, data in files.items()}
    os_info = detect_os(tree)
    parsed = Parsed(skipped=[*skipped, *oversized(tree)])
    if os_info.family == "unknown":
        parsed.skipped.append("os: unknown (no os-release, debian_version or alpine-release)")
    parsed.extend(_dpkg(tree))
    parsed.extend(_apk(tree))
    parsed.extend(_language(tree))
    return Inventory(image_id, image_name, os_info, tuple(parsed.packages), tuple(parsed.skipped))


def _language(tree: Mapping[str, bytes]) -> Parsed:
    """Python and npm packages, less those a system package installed (``owners``): their
    system package is in the inventory already, matched with its distribution's advisories."""
    owned = owned_metadata(tree)
    mine = {path: data for path, data in tree.items() if path not in owned}
    parsed = _each(mine, is_zipped_egg, python.parse_zipped_egg)
    parsed.extend(_each(mine, _unzipped_python, python.parse_metadata))
    parsed.extend(_each(mine, is_npm_manifest, npm.parse_package_json))
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
