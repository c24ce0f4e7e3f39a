"""The vulnerability database: one SQLite file of OSV records, and matching against it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from garrison.errors import StoreError
from garrison.scan.types import Finding, OSInfo, Package
from garrison.scan.vulndb import _match, _store
from garrison.scan.vulndb._archive import iter_documents
from garrison.scan.vulndb._download import (
    DEFAULT_ECOSYSTEMS,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    archive_url,
    check_timeout,
    download,
)
from garrison.scan.vulndb._importer import Importer, ImportReport
from garrison.scan.vulndb._match import MatchResult
from garrison.store.datadir import secure_data_dir

FILE_NAME = "vulndb.sqlite"


class VulnDB:
    """OSV advisories indexed by (ecosystem, package name), in the SQLite file ``path``.

    Each method opens its own connection, so one instance may serve several threads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_data_dir(cls, data_dir: Path) -> VulnDB:
        return cls(data_dir / FILE_NAME)

    def import_path(self, path: Path) -> ImportReport:
        """Import an OSV zip (like ``all.zip``), one ``.json`` record or a folder of them.

        A source over a limit of ``_archive`` is refused whole (``InvalidInput``) before the
        database is opened; a fault mid-way rolls the whole import back."""
        documents = iter_documents(path)
        with _store.connect(self.path) as conn:
            importer = Importer(conn, str(path))
            for name, document in documents:
                importer.add(name, document)
            importer.flush()
            _store.set_meta(conn, "last_import", _now())
        return importer.report

    def update(
        self,
        base_url: str = DEFAULT_URL,
        ecosystems: Sequence[str] = DEFAULT_ECOSYSTEMS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> ImportReport:
        """Download ``{base_url}/{ecosystem}/all.zip`` for each ecosystem and import it.

        Raises :class:`DownloadError` on the first archive that cannot be fetched; the
        ecosystems imported before it stay imported.
        """
        check_timeout(timeout)
        total = ImportReport(source=base_url)
        secure_data_dir(self.path.parent)  # the downloads go there first
        for ecosystem in ecosystems:
            url = archive_url(base_url, ecosystem)
            archive = download(url, self.path.parent, timeout)
            try:
                total.merge(self.import_path(archive))
            finally:
                archive.unlink(missing_ok=True)
            self._record_update(ecosystem, url)
        return total

    def _record_update(self, ecosystem: str, url: str) -> None:
        with _store.connect(self.path) as conn:
            now = _now()
            _store.set_meta(conn, f"update:{ecosystem}", f"{now} {url}")
            _store.set_meta(conn, "last_update", now)

    def exists(self) -> bool:
        """Whether the file exists; StoreError when its folder may not be read (the data
        directory is root's alone)."""
        try:
            return self.path.exists()
        except OSError as exc:
            raise StoreError(f"vulnerability database {self.path}: {exc.strerror}") from exc

    def stamp(self) -> tuple[int, ...]:
        """Changes whenever the data may have changed, without opening the database (for
        caches of scan results): the modification times of the file and of its WAL."""
        stamps = []
        for path in (self.path, self.path.with_name(self.path.name + "-wal")):
            try:
                stat = path.stat()
            except FileNotFoundError:
                stamps += [0, 0]
                continue
            stamps += [stat.st_mtime_ns, stat.st_size]
        return tuple(stamps)

    def status(self) -> dict[str, Any]:
        """Counts per ecosystem and when the data last changed (``None`` when never).

        A database file that does not exist yet reads as empty (and is not created).
        """
        if not self.exists():
            return _status(self.path, 0, {}, {})
        with _store.connect(self.path) as conn:
            total, per_ecosystem = _store.counts(conn)
            meta = _store.meta(conn)
        return _status(self.path, total, per_ecosystem, meta)

    def match(self, packages: Iterable[Package], os: OSInfo) -> list[Finding]:
        """Findings for the packages of an image running ``os``, most severe first.

        A package whose installed version does not parse is left out; see
        :meth:`match_detailed` for the list of those. ``Finding.fix_date`` is the advisory's
        ``published`` date: OSV records carry ``published``/``modified``, not the date a fix
        shipped (for DSA/DLA records the two coincide).
        """
        return list(self.match_detailed(packages, os).findings)

    def match_detailed(self, packages: Iterable[Package], os: OSInfo) -> MatchResult:
        """Like :meth:`match`, with the packages that could not be matched and why."""
        with _store.connect(self.path) as conn:
            return _match.match(conn, packages, os)


def _status(
    path: Path, total: int, per_ecosystem: dict[str, int], meta: dict[str, str]
) -> dict[str, Any]:
    updates = {
        key.split(":", 1)[1]: dict(zip(("at", "url"), value.split(" ", 1), strict=True))
        for key, value in meta.items()
        if key.startswith("update:")
    }
    return {
        "path": str(path),
        "advisories": total,
        "ecosystems": per_ecosystem,
        "last_update": meta.get("last_update"),
        "last_import": meta.get("last_import"),
        "updates": updates,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
