"""Matchers compiled once from rule lists, asked on every event: paths, ports, addresses.

Path patterns:
- ``/etc`` (no wildcard): that path and everything below it;
- ``/tmp/*.sh``: ``*`` matches within one path segment, ``?`` one character, ``**`` any depth;
- ``nc`` or ``xmrig*`` (no ``/``): the file name alone, in any directory.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_GLOB_CHARS = frozenset("*?")
_PORT_RE = re.compile(r"^(?:(tcp|udp)/)?(\d{1,5})(?:-(\d{1,5}))?$")


def is_glob(pattern: str) -> bool:
    return any(ch in _GLOB_CHARS for ch in pattern)


def glob_regex(pattern: str) -> str:
    """Translate one path glob to a regular expression (anchored by the caller)."""
    out: list[str] = []
    for token in re.split(r"(/\*\*/|\*\*|\*|\?)", pattern):
        out.append(_GLOB_PARTS.get(token, re.escape(token)))
    return "".join(out)


_GLOB_PARTS = {"/**/": "/(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]", "": ""}


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def ancestors(path: str) -> Iterator[str]:
    """``/a/b/c``, ``/a/b``, ``/a``, ``/``: the path and each directory above it."""
    while path:
        yield path
        if path == "/":
            return
        path = path.rsplit("/", 1)[0] or "/"


class PathSet:
    """A list of path patterns: sets for plain paths, one regular expression for the globs."""

    __slots__ = ("_dirs", "_glob", "_name_glob", "_names", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(patterns)
        plain = [p for p in self.patterns if not is_glob(p)]
        globs = [p for p in self.patterns if is_glob(p)]
        self._dirs = frozenset(_strip_slash(p) for p in plain if p.startswith("/"))
        self._names = frozenset(p for p in plain if "/" not in p)
        self._glob = _union(g for g in globs if "/" in g)
        self._name_glob = _union(g for g in globs if "/" not in g)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        if not self.patterns or not path:
            return False
        name = basename(path)
        if name in self._names or (self._name_glob and self._name_glob.fullmatch(name)):
            return True
        if self._glob and self._glob.fullmatch(path):
            return True
        return bool(self._dirs) and any(a in self._dirs for a in ancestors(path))

    def plain_absolute(self) -> frozenset[str]:
        """The patterns, when every one is a plain absolute path (empty otherwise)."""
        if self._glob or self._name_glob or self._names:
            return frozenset()
        return self._dirs

    def outside(self, dirs: Iterable[str]) -> bool:
        """Can no path under ``dirs`` (or a dir itself) match? Only plain absolute patterns
        neither above nor below any of them say so."""
        plain = self.plain_absolute()
        if not plain:
            return not self.patterns
        dirs = frozenset(dirs)
        below = any(a in dirs for p in plain for a in ancestors(p))  # a pattern inside a dir
        above = any(a in plain for d in dirs for a in ancestors(d))  # a dir inside a pattern
        return not (below or above)


def _strip_slash(path: str) -> str:
    return path.rstrip("/") or "/"


def _union(globs: Iterable[str]) -> re.Pattern[str] | None:
    parts = [glob_regex(g) for g in globs]
    return re.compile("|".join(f"(?:{p})" for p in parts), re.DOTALL) if parts else None


@dataclass(frozen=True, slots=True)
class PortRange:
    protocol: str | None  # None: both tcp and udp
    low: int
    high: int

    @classmethod
    def parse(cls, spec: str | int) -> PortRange:
        """``80``, ``"8000-8080"``, ``"udp/53"``; ValueError with the reason otherwise."""
        match = _PORT_RE.match(str(spec).strip().lower())
        if match is None:
            raise ValueError(f"{spec!r} is not a port or range (80, 8000-8080, udp/53)")
        low = int(match.group(2))
        high = int(match.group(3) or low)
        if not 0 <= low <= high <= 65535:
            raise ValueError(f"{spec!r}: ports run from 0 to 65535, low to high")
        return cls(match.group(1), low, high)

    def covers(self, protocol: str, port: int) -> bool:
        return self.protocol in (None, protocol) and self.low <= port <= self.high


class PortSet:
    """Port ranges; single ports in a set, ranges scanned (rule lists are short)."""

    __slots__ = ("_ranges", "_singles")

    def __init__(self, specs: Iterable[str | int] = ()) -> None:
        ranges = [PortRange.parse(s) for s in specs]
        self._singles = frozenset((r.protocol, r.low) for r in ranges if r.low == r.high)
        self._ranges = tuple(r for r in ranges if r.low != r.high)

    def __bool__(self) -> bool:
        return bool(self._singles or self._ranges)

    def matches(self, protocol: str, port: int) -> bool:
        singles = self._singles
        if (None, port) in singles or (protocol, port) in singles:
            return True
        return any(r.covers(protocol, port) for r in self._ranges)


def parse_network(spec: str) -> IPNetwork:
    """``10.0.0.0/8``, ``2001:db8::/32`` or one address; ValueError with the reason otherwise."""
    try:
        return ipaddress.ip_network(spec.strip(), strict=False)
    except ValueError as exc:
        raise ValueError(f"{spec!r} is not an IP address or CIDR network") from exc


class IpSet:
    """CIDR networks, v4 and v6. A v4-mapped v6 address (``::ffff:1.2.3.4``) counts as v4."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, specs: Iterable[str] = ()) -> None:
        nets = [parse_network(s) for s in specs]
        self._v4 = tuple(n for n in nets if n.version == 4)
        self._v6 = tuple(n for n in nets if n.version == 6)

    def __bool__(self) -> bool:
        return bool(self._v4 or self._v6)

    def matches(self, address: str) -> bool:
        if not (self._v4 or self._v6):
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        nets: tuple[IPNetwork, ...] = self._v4 if ip.version == 4 else self._v6
        return any(ip in net for net in nets)
