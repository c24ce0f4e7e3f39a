"""``/proc/PID/mountinfo`` read into mounts (proc(5)); standard library only, since the
read-only mount helper (``mountns``) imports it in a child process that must start fast."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of mountinfo."""

    id: int
    parent: int
    dev: str
    root: str
    point: str
    read_only: bool
    fstype: str


def parse_mountinfo(text: str) -> list[Mount]:
    """``ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER-OPTIONS``."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        options = fields[5].split(",")
        fstype = (line.partition(" - ")[2].split() or [""])[0]
        root, point = _unescape(fields[3]), _unescape(fields[4])
        mount = Mount(
            int(fields[0]), int(fields[1]), fields[2], root, point, "ro" in options, fstype
        )
        mounts.append(mount)
    return mounts


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 …)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="replace")
