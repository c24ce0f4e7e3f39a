"""npm packages: the ``package.json`` of each package under a ``node_modules`` folder."""

from __future__ import annotations

import json
from typing import Any

from garrison.scan.inventory.limits import MAX_MANIFEST, too_large
from garrison.scan.inventory.parsed import Parsed, clipped, package


def parse_package_json(data: bytes, path: str) -> Parsed:
    """The package a ``package.json`` names; skipped (and said why) when it is larger than
    ``MAX_MANIFEST``, not JSON, or names none."""
    if note := too_large(path, len(data), MAX_MANIFEST):
        return Parsed(skipped=[note])
    manifest, why = load_json(data)
    if not isinstance(manifest, dict):
        return Parsed(skipped=[f"{path}: skipped, {why or 'not a JSON object'}"])
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return Parsed(skipped=[f"{path}: skipped, no name or version"])
    parsed = Parsed()
    parsed.add(package("npm", name, version, path=path, licenses=_licenses(manifest)), f"{path}:")
    return parsed


def load_json(data: bytes) -> tuple[Any, str]:
    """The JSON value, or None and why it is not JSON."""
    try:
        return json.loads(data), ""
    except ValueError as exc:  # UnicodeDecodeError, and an integer of more digits than int() takes
        return None, f"not JSON ({clipped(str(exc))})"
    except RecursionError:  # the C decoder recurses per array or object (json docs)
        return None, "not JSON (nested too deep)"


def _licenses(manifest: dict[str, Any]) -> tuple[str, ...]:
    """``license`` is an SPDX string; older packages give ``{"type": …}`` or a list of those
    under ``licenses`` (https://docs.npmjs.com/cli/configuring-npm/package-json#license)."""
    found = manifest.get("license", manifest.get("licenses"))
    entries = found if isinstance(found, list) else [found]
    names = [e.get("type") if isinstance(e, dict) else e for e in entries]
    return tuple(n for n in names if isinstance(n, str) and n)
