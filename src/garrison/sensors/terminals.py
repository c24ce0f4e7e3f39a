"""Who drives a process's terminal: the "upgraded" reverse shell.

A reverse shell whose standard input and output are a socket is plain to see. The usual next
step hides it: the attacker runs ``python3 -c 'import pty; pty.spawn("/bin/bash")'`` (or
``socat exec:bash,pty tcp:…``, or ``script /dev/null``), and the new shell's terminal is a pty
whose other end — the master, ``/dev/ptmx`` — is held by a process that relays it to the
network socket. That process is found here: among the shell's nearest ancestors in the same
mount namespace (``docker exec -t``'s master is held by the container's shim, outside the
container), one that holds the master of the shell's pty (its ``tty-index`` in fdinfo) and a
TCP or UDP socket of the container's network namespace. A terminal multiplexer (tmux,
screen) holds ptys and unix sockets only, and is not taken for one.
"""

from __future__ import annotations

import os

PROC = "/proc"
DEPTH = 2  # how many ancestors may relay the pty: the parent, then its parent
_MASTERS = frozenset({"/dev/ptmx", "/dev/pts/ptmx"})
_NET_TABLES = ("tcp", "tcp6", "udp", "udp6")


def pty_driver(pid: int, ppid: int, proc: str = PROC) -> int:
    """The pid of the process that relays ``pid``'s terminal to a network socket; 0 when its
    terminal is no pty, or nothing of the kind drives it."""
    index = _pts_index(pid, proc)
    if index is None:
        return 0
    namespace = _readlink(f"{proc}/{pid}/ns/mnt")
    candidate = ppid
    for _ in range(DEPTH):
        if candidate <= 1 or not namespace or _readlink(f"{proc}/{candidate}/ns/mnt") != namespace:
            return 0
        if _relays(candidate, index, proc):
            return candidate
        candidate = _ppid(candidate, proc)
    return 0


def _pts_index(pid: int, proc: str) -> int | None:
    for fd in (0, 1):
        link = _readlink(f"{proc}/{pid}/fd/{fd}")
        number = link.removeprefix("/dev/pts/")
        if number != link and number.isdigit():
            return int(number)
    return None


def _relays(pid: int, index: int, proc: str) -> bool:
    """Does ``pid`` hold the master of pty ``index`` and a network socket?"""
    master, sockets = False, set()
    folder = f"{proc}/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    for name in names:
        link = _readlink(f"{folder}/{name}")
        if link in _MASTERS:
            master = master or _tty_index(f"{proc}/{pid}/fdinfo/{name}") == index
        elif link.startswith("socket:[") and link.endswith("]"):
            sockets.add(link[len("socket:[") : -1])
    return master and bool(sockets & _inet_inodes(pid, proc))


def _tty_index(fdinfo: str) -> int | None:
    try:
        with open(fdinfo, encoding="ascii", errors="replace") as text:
            for line in text:
                key, _, value = line.partition(":")
                if key == "tty-index" and value.strip().isdigit():
                    return int(value)
    except OSError:
        return None
    return None


def _inet_inodes(pid: int, proc: str) -> set[str]:
    """The inodes of the TCP and UDP sockets of ``pid``'s network namespace."""
    inodes: set[str] = set()
    for table in _NET_TABLES:
        try:
            with open(f"{proc}/{pid}/net/{table}", encoding="ascii", errors="replace") as text:
                next(text, None)  # the header
                for line in text:
                    fields = line.split()
                    if len(fields) > 9:
                        inodes.add(fields[9])
        except OSError:
            continue
    return inodes


def _ppid(pid: int, proc: str) -> int:
    try:
        with open(f"{proc}/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return 0


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""
