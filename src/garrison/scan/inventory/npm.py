"""npm packages: the ``package.json`` of each package under a ``node_modules`` folder."""

from __future__ import annotations

import json
from typing import Any

from garrison.scan.inventory.parsed import Parsed, package


def parse_package_json(data: bytes, path: str) -> Parsed:
    try:
        manifest = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        return Parsed(skipped=[f"{path}: skipped, not JSON ({exc})"])
    if not isinstance(manifest, dict):
        return Parsed(skipped=[f"{path}: skipped, not a JSON object"])
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return Parsed(skipped=[f"{path}: skipped, no name or version"])
    pkg = package("npm", name, version, path=path, licenses=_licenses(manifest))
    return Parsed(packages=[pkg])


def _licenses(manifest: dict[str, Any]) -> tuple[str, ...]:
    """``license`` is an SPDX string; older packages give ``{"type": …}`` or a list of those
    under ``licenses`` (https://docs.npmjs.com/cli/configuring-npm/package-json#license)."""
    found = manifest.get("license", manifest.get("licenses"))
    entries = found if isinstance(found, list) else [found]
    names = [e.get("type") if isinstance(e, dict) else e for e in entries]
    return tuple(n for n in names if isinstance(n, str) and n)
