"""Language packages a system package manager installed: their metadata files, as the system
package lists them.

``python3-idna`` puts ``/usr/lib/python3/dist-packages/idna-3.3.egg-info`` on a Debian system;
Debian patches it and answers for it (DSA/DLA advisories on ``python-idna``), so PyPI's
advisories on ``idna 3.3`` do not apply. A metadata file a system package owns is therefore
not a language package of the inventory, as Trivy does (aquasecurity/trivy ``pkg/fanal``: its
dpkg and apk analyzers return ``SystemInstalledFiles``, which the language analyzers skip). A
distribution pip installed over the system's one writes a metadata file of its own, not
listed: it stays.

The owners: dpkg's ``info/NAME.list`` (one absolute path a line), a distroless image's
``status.d/NAME.md5sums`` (``HASH  path``), apk's database (``F:`` folder, ``R:`` file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from garrison.scan.inventory.wanted import (
    APK_INSTALLED,
    is_file_list,
    is_package_json,
    is_python_metadata,
    normalize,
)

# Where a listed path may name a language package's metadata: found by a literal search, so
# a list costs one pass in C however long its lines (a pattern that spans a whole line
# backtracks over it at every start).
_HINT = re.compile(rb"-packages/|node_modules/|package\.json")
_MD5 = re.compile(rb"[0-9a-f]{32}  ")
# The folders of apk's database that may hold metadata: a site-packages folder itself (single
# file egg-info, zipped egg), a .dist-info or .egg-info folder, an egg's EGG-INFO.
# Or an npm package's folder (node_modules/NAME, node_modules/@SCOPE/NAME), any package.json
# of which is checked below.
_APK_FOLDER = re.compile(
    rb"^F:([^\n]*-packages(?:/[^\n/]+\.(?:dist-info|egg-info|egg/EGG-INFO))?"
    rb"|[^\n]*node_modules/(?:@[^\n/]+/)?[^\n/]+)$",
    re.M,
)
_APK_FILE = re.compile(rb"^R:([^\n]+)$", re.M)
_APK_ANY_FOLDER = re.compile(rb"^F:", re.M)


def listed_metadata(data: bytes) -> bytes:
    """The lines of a file list that name a language package's metadata file, normalized (no
    leading ``/``, no md5sum), one a line. Applying it again changes nothing."""
    kept = dict.fromkeys(path for path in _hinted(data) if _is_metadata(path))
    return "\n".join(kept).encode()


def owned_metadata(tree: Mapping[str, bytes]) -> frozenset[str]:
    """Every metadata path a system package of the tree owns."""
    owned: set[str] = set()
    for path, data in tree.items():
        if is_file_list(path):
            owned.update(listed_metadata(data).decode().splitlines())
    apk = next((p for p in APK_INSTALLED if p in tree), None)
    if apk is not None:
        owned.update(_apk_owned(tree[apk]))
    return frozenset(owned)


def _hinted(data: bytes) -> Iterator[str]:
    """Each line holding a hint, once; the search goes on past its end."""
    at = 0
    while hint := _HINT.search(data, at):
        begin = data.rfind(b"\n", 0, hint.start()) + 1
        end = data.find(b"\n", hint.end())
        at = end = len(data) if end < 0 else end
        line = data[begin:end].rstrip(b"\r")
        if _MD5.match(line):
            line = line[34:]
        yield normalize(line.decode("utf-8", errors="replace"))


def _is_metadata(path: str) -> bool:
    return is_python_metadata(path) or is_package_json(path)


def _apk_owned(data: bytes) -> Iterator[str]:
    """Metadata under each Python distribution folder apk lists: the ``R:`` lines from its
    ``F:`` line up to the next ``F:`` (apk-tools ``src/database.c``, ``apk_db_fdb_write``)."""
    for folder in _APK_FOLDER.finditer(data):
        following = _APK_ANY_FOLDER.search(data, folder.end())
        end = following.start() if following else len(data)
        base = normalize(folder.group(1).decode("utf-8", errors="replace"))
        for name in _APK_FILE.finditer(data, folder.end(), end):
            path = f"{base}/{name.group(1).decode('utf-8', errors='replace')}"
            if _is_metadata(path):
                yield path
