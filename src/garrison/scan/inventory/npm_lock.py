"""npm's lockfiles, ``package-lock.json`` and ``npm-shrinkwrap.json``, read where a project
holds no ``node_modules``: the packages ``npm ci`` would install, as npm itself lists them
(``npm query --package-lock-only '*:not(.dev)'``).

The format (https://docs.npmjs.com/cli/configuring-npm/package-lock-json):

- version 2 and 3 list every package under ``packages``, keyed by its location
  (``node_modules/a``, ``node_modules/a/node_modules/b``, a workspace's ``packages/ws``); a
  workspace is reached through a ``"link": true`` entry that names its folder in
  ``resolved``. The root (``""``) is the project itself, not a package of it.
- version 1 nests ``dependencies`` by name; a workspace or other local folder has the version
  ``file:FOLDER``, whose own ``package.json`` gives its version.

Development dependencies (``"dev": true``) are left out, as Trivy leaves them out: a lockfile
without ``node_modules`` says what production would install. An entry whose version is not a
registry version (a git URL, a tarball) is skipped and said so.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.scan.inventory.limits import MAX_DATABASE, MAX_RECORDS, too_large
from garrison.scan.inventory.npm import load_json
from garrison.scan.inventory.parsed import Parsed, clipped, package

NODE_MODULES = "node_modules/"
_MAX_DEPTH = 200  # nested version 1 dependencies followed; npm's own trees stay far below


@dataclass(frozen=True, slots=True)
class _Entry:
    location: str  # as in ``packages``: node_modules/a/node_modules/b, packages/ws
    name: str
    version: str


def parse_lockfile(data: bytes, path: str, tree: Mapping[str, bytes]) -> Parsed:
    """The packages a lockfile at ``path`` installs; ``tree`` (rootfs path → content) gives a
    local folder's ``package.json`` where the lockfile names only its folder."""
    if note := too_large(path, len(data), MAX_DATABASE):
        return Parsed(skipped=[note])
    lock, why = load_json(data)
    if not isinstance(lock, dict):
        return Parsed(skipped=[f"{path}: skipped, {why or 'not a JSON object'}"])
    folder = posixpath.dirname(path)
    packages = lock.get("packages")
    if isinstance(packages, dict):
        entries = _entries_v2(packages)
    else:
        entries = _entries_v1(lock.get("dependencies"), folder, tree)
    return _listed(entries, path)


def _listed(entries: Iterator[_Entry | str], path: str) -> Parsed:
    parsed = Parsed()
    for count, entry in enumerate(entries):
        if count >= MAX_RECORDS:
            parsed.skip(f"{path}: entries past {MAX_RECORDS} skipped")
            break
        if isinstance(entry, str):
            parsed.skip(f"{path}: {entry}")
            continue
        where = f"{path}: {clipped(entry.location)}"
        if _registry_version(entry.version):
            parsed.add(package("npm", entry.name, entry.version, path=path), where)
        else:
            parsed.skip(f"{where} skipped, version {clipped(entry.version)!r}")
    return parsed.counted(path)


def _registry_version(version: str) -> bool:
    return bool(version) and version[0].isdigit()


def _entries_v2(packages: dict[str, Any]) -> Iterator[_Entry | str]:
    linked = _link_names(packages)
    for location, entry in packages.items():
        if not location or not isinstance(entry, dict) or entry.get("dev") is True:
            continue
        if entry.get("link") is True:
            continue  # the folder it names is an entry of its own (packages/ws)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            name = _name_at(location, linked)
        version = entry.get("version")
        if not isinstance(version, str) or not name:
            yield f"{clipped(location)} skipped, no name or version"
            continue
        yield _Entry(location, name, version)


def _link_names(packages: dict[str, Any]) -> dict[str, str]:
    """Each linked folder (``packages/ws``) → the name it is installed as (``ws``)."""
    names: dict[str, str] = {}
    for location, entry in packages.items():
        if isinstance(entry, dict) and entry.get("link") is True:
            resolved = entry.get("resolved")
            if isinstance(resolved, str):
                names.setdefault(resolved, _name_at(location, {}))
    return names


def _name_at(location: str, linked: Mapping[str, str]) -> str:
    """The package name a location installs: after its last ``node_modules/`` (a scoped name
    keeps its scope); a linked folder's is the name it is linked as, else its base name."""
    at = location.rfind(NODE_MODULES)
    if at >= 0:
        return location[at + len(NODE_MODULES) :]
    return linked.get(location) or posixpath.basename(location)


def _entries_v1(deps: Any, folder: str, tree: Mapping[str, bytes]) -> Iterator[_Entry | str]:
    pending: list[tuple[str, Any, int]] = [("", deps, 0)]
    while pending:
        parent, level, depth = pending.pop()
        if not isinstance(level, dict):
            continue
        if depth > _MAX_DEPTH:
            yield f"{clipped(parent)}: dependencies nested deeper than {_MAX_DEPTH} skipped"
            continue
        for name, entry in level.items():
            if not isinstance(entry, dict) or entry.get("dev") is True:
                continue
            location = f"{parent}{NODE_MODULES}{name}"
            yield _entry_v1(location, name, entry.get("version"), folder, tree)
            pending.append((location + "/", entry.get("dependencies"), depth + 1))


def _entry_v1(
    location: str, name: str, version: Any, folder: str, tree: Mapping[str, bytes]
) -> _Entry | str:
    if not isinstance(version, str) or not version:
        return f"{clipped(location)} skipped, no version"
    if version.startswith("file:"):
        return _local_folder(location, name, version[len("file:") :], folder, tree)
    return _Entry(location, name, version)


def _local_folder(
    location: str, name: str, target: str, folder: str, tree: Mapping[str, bytes]
) -> _Entry | str:
    """A ``file:`` dependency: the version its folder's ``package.json`` gives."""
    manifest_path = posixpath.normpath(posixpath.join(folder, target, "package.json"))
    manifest, _ = load_json(tree.get(manifest_path, b""))
    version = manifest.get("version") if isinstance(manifest, dict) else None
    if not isinstance(version, str):
        return f"{clipped(location)} skipped, its folder {clipped(target)} has no package.json"
    return _Entry(posixpath.relpath(posixpath.dirname(manifest_path), folder or "."), name, version)
