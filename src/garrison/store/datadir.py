"""The data directory is its owner's alone: the folder 0700, every file in it 0600.

It holds audits (the commands containers ran, with their arguments), models, the rules in
force and the blocked containers: another local user must neither read nor change any of it.
Every opener (``SQLiteStore``, ``VulnDB``, the audit spool) goes through here, so whichever
command makes the folder makes it private, and every command that opens it puts back what was
loosened — with one warning naming what it repaired.

Modes are set whatever the umask: ``mkdir``/``open`` get the private mode (a umask only takes
bits away, so nothing is ever more open), then an explicit ``chmod`` gives the owner back what
an unusual umask took. Files are made 0600 *before* SQLite opens them: SQLite makes a new
database 0644 less the umask, and gives its -wal, -shm and -journal files the database file's
mode (``robust_open`` and ``findCreateFileMode`` in sqlite3.c).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from garrison.errors import StoreError

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
OTHERS = 0o077  # the group's and everyone else's bits


def secure_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` (0700) when missing; when it exists, take every group and other bit
    off it and off each entry in it, logging one warning that names what was repaired.

    Raises StoreError when it cannot, or when the folder (or a file in it) belongs to another
    user than root or this process's: that user could loosen the modes again.
    """
    try:
        made = _make(data_dir)
    except OSError as exc:
        raise StoreError(f"cannot create data directory {data_dir}: {_why(exc)}") from exc
    try:
        repaired = [] if made else _repair(data_dir)
    except OSError as exc:
        raise StoreError(f"cannot open data directory {data_dir}: {_why(exc)}") from exc
    if repaired:
        log.warning(
            "data directory %s was open to other users; made owner-only: %s",
            data_dir,
            ", ".join(repaired),
        )


def open_private(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)``; a file it makes is 0600 whatever the umask.

    Raises OSError, like ``os.open``."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags | os.O_CLOEXEC)
    os.fchmod(fd, FILE_MODE)
    return fd


def create_private_file(path: Path) -> None:
    """Make ``path`` an empty 0600 file when missing (SQLite takes an empty file for an empty
    database); raises StoreError when it cannot.

    A file that exists is not opened: SQLite's locks on it are this process's (fcntl), and
    closing any descriptor of the file would drop the locks of a store already open on it here.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {_why(exc)}") from exc
    try:
        os.fchmod(fd, FILE_MODE)  # new, so no lock of ours is on it to drop at the close
    except OSError as exc:
        raise StoreError(f"cannot create {path}: {_why(exc)}") from exc
    finally:
        os.close(fd)


def _make(data_dir: Path) -> bool:
    """Make the folder; False when it was already there."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)  # /var/lib: the system's usual modes
    try:
        os.mkdir(data_dir, DIR_MODE)
    except FileExistsError:
        return False
    os.chmod(data_dir, DIR_MODE)
    return True


def _repair(data_dir: Path) -> list[str]:
    """Take group and other bits off the folder first (from then on nobody else can reach its
    entries), then off each entry; what was changed, for the warning."""
    st = os.stat(data_dir)
    if not stat.S_ISDIR(st.st_mode):
        raise StoreError(f"data directory {data_dir} is not a directory")
    repaired = _tighten(data_dir, st, str(data_dir))
    with os.scandir(data_dir) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
                repaired += _tighten(Path(entry.path), st, entry.name)
            except FileNotFoundError:
                continue  # removed meanwhile (a download's temporary file)
    return repaired


def _tighten(path: Path, st: os.stat_result, name: str) -> list[str]:
    if stat.S_ISLNK(st.st_mode):
        return []  # a link's own mode means nothing; what it points to is not ours to change
    _check_owner(path, st)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & OTHERS:
        return []
    os.chmod(path, mode & ~OTHERS)
    return [f"{name} ({mode:04o} to {mode & ~OTHERS:04o})"]


def _check_owner(path: Path, st: os.stat_result) -> None:
    """An owner other than root or us could chmod it back (or read a file through another
    hard link it made while the folder was open): no mode protects against that."""
    if st.st_uid not in (0, os.geteuid()):
        raise StoreError(
            f"{path} belongs to uid {st.st_uid}, who could read and change Garrison's data: "
            "chown it to the user Garrison runs as, or choose another --data-dir"
        )


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
