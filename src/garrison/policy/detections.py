"""The built-in detections: pure predicates over what an event names.

Names are matched on the file name the caller asked for (``/bin/nc`` for busybox's applet),
exactly: ``ncdu`` is not ``nc``. Lists are from public miner and scanner projects and from the
tools Prisma Cloud, Falco and NeuVector flag; a renamed binary escapes a name list, which is why
drift and the model stand beside it.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Sequence

from garrison.policy.matchers import ancestors, basename

CRYPTO_MINERS = frozenset(
    {
        "xmrig", "xmr-stak", "xmr-stak-cpu", "xmr-stak-rx", "minerd", "cpuminer",
        "cpuminer-multi", "cpuminer-opt", "ccminer", "cgminer", "bfgminer", "ethminer",
        "nbminer", "t-rex", "phoenixminer", "lolminer", "gminer", "nanominer", "teamredminer",
        "srbminer", "srbminer-multi", "wildrig", "xmrminer", "claymore", "nheqminer",
        "kdevtmpfsi", "kinsing", "sgminer", "randomx", "cryptonight",
    }
)  # fmt: skip
# Mining pools speak the Stratum protocol; miners take the pool as a URL argument.
_STRATUM = re.compile(r"stratum\d?\+(?:tcp|ssl|tls)://", re.IGNORECASE)

LATERAL_MOVEMENT_TOOLS = frozenset(
    {
        "nc", "ncat", "netcat", "nc.openbsd", "nc.traditional", "nmap", "socat", "telnet",
        "masscan", "zmap", "hping", "hping2", "hping3", "rustscan", "unicornscan", "naabu",
        "zgrab", "zgrab2", "arp-scan", "netdiscover", "fping", "nping", "pnscan", "ssh-keyscan",
    }
)  # fmt: skip

SHELLS = frozenset(
    {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "pdksh", "tcsh", "csh", "fish", "rbash"}
)

BINARY_DIRS = frozenset(
    {
        "/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin",
        "/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64",
        "/usr/libx32", "/usr/local/lib",
    }
)  # fmt: skip

# Account databases; ``+`` files are what shadow-utils writes and renames over the real one.
ADMIN_ACCOUNT_FILES = frozenset(
    f"/etc/{name}{suffix}"
    for name in ("passwd", "shadow", "group", "gshadow", "sudoers")
    for suffix in ("", "+")
)
ADMIN_ACCOUNT_DIRS = frozenset({"/etc/sudoers.d"})
SSH_KEYS = ("authorized_keys", "authorized_keys2")
SSH_KEY_FILES = frozenset(SSH_KEYS)


def is_crypto_miner(path: str, argv: Sequence[str]) -> bool:
    """A known miner's name, or a Stratum pool URL in the arguments."""
    return basename(path).lower() in CRYPTO_MINERS or any(_STRATUM.search(a) for a in argv)


def is_lateral_movement_tool(path: str) -> bool:
    return basename(path) in LATERAL_MOVEMENT_TOOLS


def is_shell(path: str) -> bool:
    return basename(path) in SHELLS


def reads_shell_stdio(reverse_shell: str, path: str) -> bool:
    """Does judging an exec of ``path`` read the process's own descriptors (the reverse-shell
    check, ``reverse_shell`` being its effect)? Only in the permission path, while the
    process waits: such an exec is judged before the answer and never skipped by the kernel."""
    return reverse_shell != "disable" and is_shell(path)


def is_reverse_shell(path: str, stdio_socket: bool) -> bool:
    """A shell whose standard input or output is a socket: someone drives it over the network."""
    return stdio_socket and is_shell(path)


def is_setuid(file_mode: int | None) -> bool:
    return file_mode is not None and bool(file_mode & (stat.S_ISUID | stat.S_ISGID))


def is_binary_dir_write(path: str) -> bool:
    """A write anywhere below a directory of executables or libraries."""
    return any(a in BINARY_DIRS for a in ancestors(path) if a != path)


# PEP 3147 caches: ``__pycache__/json.cpython-311.pyc`` (``.opt-1.pyc`` optimised), written
# by importlib as ``NAME.pyc.<id>`` and renamed over the final name (``_write_atomic``).
_PYC = re.compile(r"/__pycache__/[^/]+\.pyc(?:\.\d+)?")
_PYTHON = re.compile(r"python(?:\d+(?:\.\d+)?)?")


def is_bytecode_cache(path: str, writer: str) -> bool:
    """A Python interpreter (``writer``: its executable) writing its own byte-code cache:
    housekeeping, not a change to the binaries. Narrow on purpose: only ``.pyc`` names inside a
    ``__pycache__`` directory (and that directory) and only by a python executable, so nothing
    else — an ELF dropped into /usr/bin — passes for a cache (executableCreation judges the
    bytes anyway)."""
    if not _PYTHON.fullmatch(basename(writer)):
        return False
    if path.endswith("/__pycache__"):  # the cache's directory, made on first import
        return True
    return _PYC.fullmatch(path, path.rfind("/__pycache__/")) is not None


def is_ssh_keys(path: str) -> bool:
    """``authorized_keys`` in a ``.ssh`` directory (root's or any user's)."""
    parent, _, name = path.rpartition("/")
    return name in SSH_KEY_FILES and basename(parent) == ".ssh"


def is_admin_accounts(path: str) -> bool:
    if path in ADMIN_ACCOUNT_FILES:
        return True
    return any(a in ADMIN_ACCOUNT_DIRS for a in ancestors(path) if a != path)
