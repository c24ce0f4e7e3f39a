"""The vulnerability database: OSV records in SQLite, and matching installed packages
against them per the OSV evaluation rules::

    db = VulnDB.in_data_dir(Path("/var/lib/garrison"))   # …/vulndb.sqlite
    db.import_path(Path("Debian-all.zip"))               # or db.update(url, ["Debian"])
    findings = db.match(inventory.packages, inventory.os)
"""

from __future__ import annotations

from garrison.scan.vulndb._db import FILE_NAME, VulnDB
from garrison.scan.vulndb._download import (
    DEFAULT_ECOSYSTEMS,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    DownloadError,
)
from garrison.scan.vulndb._importer import ImportReport
from garrison.scan.vulndb._match import MatchResult, affects
from garrison.scan.vulndb._versions import VersionError

__all__ = [
    "DEFAULT_ECOSYSTEMS",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "FILE_NAME",
    "DownloadError",
    "ImportReport",
    "MatchResult",
    "VersionError",
    "VulnDB",
    "affects",
]
