"""OSV records written against what garrison-test/debian:12 holds *now*.

The image is built with mmdebstrap from the current bookworm archive, so its versions move
with every Debian point or security release; records with fixed versions typed in by hand
would stop meaning "above" or "equal" the day glibc gets a new upload. These records are
made from the live installed source versions instead, in the shape OSV publishes for Debian
(source package names, ``Debian:12``, a CVSS v3 vector).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from garrison.scan.types import Package

ABOVE_ID = "DEBIAN-CVE-2099-0001"  # glibc, fixed just above the installed version
EQUAL_ID = "DEBIAN-CVE-2099-0002"  # openssl, fixed at exactly the installed version
CRITICAL_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # base score 9.8
# dpkg orders "+" after the end of a version: "2.36-9+deb12u14+garrison1" > "2.36-9+deb12u14",
# yet below any later Debian upload ("…+deb12u15"). Source: deb-version(7), "Sorting".
ABOVE_SUFFIX = "+garrison1"


def source_versions(packages: Iterable[Package]) -> dict[str, str]:
    """Debian source package name → installed source version (what OSV Debian records name)."""
    return {p.match_name: p.match_version for p in packages if p.ecosystem == "Debian"}


def osv_record(rid: str, source: str, fixed: str, summary: str) -> dict[str, Any]:
    """One OSV record for a Debian 12 source package, fixed at ``fixed``, rated critical."""
    affected = {
        "package": {
            "ecosystem": "Debian:12",
            "name": source,
            "purl": f"pkg:deb/debian/{source}?arch=source",
        },
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
    }
    return {
        "id": rid,
        "summary": summary,
        "schema_version": "1.6.0",
        "published": "2099-01-10T00:00:00Z",
        "modified": "2099-01-10T08:00:00Z",
        "aliases": [rid.removeprefix("DEBIAN-")],
        "severity": [{"type": "CVSS_V3", "score": CRITICAL_VECTOR}],
        "affected": [affected],
        "references": [
            {"type": "ADVISORY", "url": f"https://security-tracker.debian.org/tracker/{rid}"}
        ],
    }


def live_records(installed: Mapping[str, str]) -> list[dict[str, Any]]:
    """A glibc record fixed above the installed glibc, an openssl record fixed at the
    installed openssl (which must not be reported)."""
    return [
        osv_record(
            ABOVE_ID, "glibc", installed["glibc"] + ABOVE_SUFFIX, "glibc: fixed above installed"
        ),
        osv_record(EQUAL_ID, "openssl", installed["openssl"], "openssl: fixed at installed"),
    ]


def write_live_records(folder: Path, packages: Iterable[Package]) -> Path:
    """Writes ``live_records`` for the installed ``packages`` as ``osv_<id>.json`` files in
    ``folder`` (created) and returns it, ready for ``VulnDB.import_path``."""
    folder.mkdir(parents=True, exist_ok=True)
    for record in live_records(source_versions(packages)):
        (folder / f"osv_{record['id']}.json").write_text(json.dumps(record, indent=2) + "\n")
    return folder
