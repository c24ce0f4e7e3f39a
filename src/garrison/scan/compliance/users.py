"""The user an exec runs as, resolved as dockerd and runc resolve ``--user``.

moby hands the exec's ``User`` to ``user.GetExecUserPath`` (moby/sys/user) with no defaults:
``USER[:GROUP]``; a USER that Go's ``strconv.Atoi`` reads (``0``, ``00``, ``+0``, ``-0``) is a
uid whatever the passwd file says; any other USER is looked up by name in the container's
``/etc/passwd`` (first match wins; no match fails the exec); an empty USER with a group
(``:0``) is uid 0. So ``--user 00`` and ``--user 0000:0`` are root, and so is any name the
container's passwd maps to uid 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_GO_INT = re.compile(r"^[+-]?[0-9]+$")
ROOT = 0

# The container's /etc/passwd text; None when it has none. Raises GarrisonError when unreadable.
PasswdReader = Callable[[], "str | None"]


def no_passwd() -> str:
    """For a container whose passwd is not at hand: only root is known."""
    return "root:x:0:0:root:/root:/bin/sh"


def go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: optional sign, ASCII digits, nothing else."""
    return int(text) if _GO_INT.match(text) else None


def exec_uid(user: str, passwd: PasswdReader) -> int | None:
    """The uid of an exec given ``--user user``; None when there is no such user (the exec
    fails in runc) or ``user`` is empty (the container's own user, not an exec option)."""
    if not user:
        return None
    name = user.split(":", 1)[0]
    if not name:
        return ROOT
    uid = go_atoi(name)
    if uid is not None:
        return uid
    return passwd_uid(passwd(), name)


def passwd_uid(text: str | None, name: str) -> int | None:
    """The uid of ``name`` in a passwd file, as moby/sys/user parses it."""
    for line in (text or "").splitlines():
        fields = line.strip().split(":")
        if fields[0] == name:
            # moby/sys/user's parseLine: a missing or unreadable uid field reads 0.
            return (go_atoi(fields[2]) if len(fields) > 2 else None) or ROOT
    return None
