"""Hard links: a file written through another of its names.

A write to ``/tmp/p`` after ``ln /etc/passwd /tmp/p`` changes ``/etc/passwd``: the kernel's
events name the file by the link it was opened through. For a file with more than one link,
the names a policy protects (``/etc/passwd``, ``/root/.ssh/authorized_keys``, …: a fixed few,
``*`` allowed in a folder's name) are looked up in the container's root and compared by
inode — a few ``lstat`` calls, never an open (the file guard must not open files of the
container it guards), and only for files with several links, which are rare.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable


def other_name(root: str, st: os.stat_result, names: Iterable[str], path: str) -> str | None:
    """The first of ``names`` (container paths) that is the same file as ``st``, other than
    ``path`` itself; None when none is. ``root``: the container's root seen from here."""
    if st.st_nlink < 2:
        return None
    for name in names:
        for found in _expand(root, name):
            if found != path and _same(root + found, st):
                return found
    return None


def _expand(root: str, name: str) -> list[str]:
    if "*" not in name:
        return [name]
    return [p[len(root) :] for p in glob.glob(glob.escape(root) + name)]


def _same(host_path: str, st: os.stat_result) -> bool:
    try:
        other = os.lstat(host_path)
    except OSError:
        return False
    return (other.st_dev, other.st_ino) == (st.st_dev, st.st_ino)
