"""Written paths, aggregated to the directories a container normally writes.

The rule (what the model keeps for a write to a file ``F``):

1. Keep the *directory* of ``F``, never the file: a new file in a known directory is normal.
2. Generated names become ``*``: a component that is all digits (pids, counters), hex of 8+
   characters with a digit (hashes, container ids), a UUID, a ``tmp`` name with a random suffix
   (Python's ``tempfile``), or a name with a 6+ character random suffix after a dot
   (``mktemp``'s ``sh-thd.Xa3bQ9``).  ``*`` matches exactly one component.
3. Deep directories are cut at ``MAX_DEPTH`` components.
4. When a directory gathers more than ``MAX_SIBLINGS`` learned children, they collapse into
   ``parent/*``.

An entry of two components or more (``/var/log``, ``/tmp/*``) covers writes in its whole
subtree; ``/`` and top-level entries (``/tmp``) cover only files directly in them, so one write
to ``/tmp/x`` does not make the whole ``/tmp`` tree — or a write to ``/x`` the whole disk — normal.
Learning only ever widens what is covered: a path learned stays covered.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable, Iterator

MAX_DEPTH = 6
MAX_SIBLINGS = 8
WILD = "*"
SUBTREE_DEPTH = 2  # entries at least this deep cover their subtree

Parts = tuple[str, ...]

_GENERATED = re.compile(
    r"""^(?:
        \d+                                     # pids, counters
      | (?=[0-9a-fA-F]*\d)[0-9a-fA-F]{8,}       # hashes, ids
      | [0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}  # UUIDs
      | tmp[A-Za-z0-9_]{6,}                     # tempfile.mkstemp / mkdtemp
      | .+\.(?=[A-Za-z0-9]*[0-9A-Z])[A-Za-z0-9]{6,}  # mktemp: name.Xa3bQ9
    )$""",
    re.VERBOSE,
)


def is_generated(name: str) -> bool:
    """Does this path component look machine-generated (a pid, hash, temp name)?"""
    return _GENERATED.match(name) is not None


@functools.lru_cache(maxsize=4096)  # containers write the same few paths over and over
def directory_of(path: str) -> Parts:
    """The normalised directory of a written file, as path components (``()`` is ``/``)."""
    directory = posixpath.dirname(posixpath.normpath("/" + path.lstrip("/")))
    parts = tuple(p for p in directory.split("/") if p)
    parts = parts[:MAX_DEPTH]
    return tuple(WILD if is_generated(p) else p for p in parts)


def to_text(parts: Parts) -> str:
    return "/" + "/".join(parts)


def from_text(text: str) -> Parts:
    return tuple(p for p in text.split("/") if p)


def _entry_matches(entry: Parts, parts: Parts) -> bool:
    """Does a learned entry cover a (normalised) directory?"""
    if len(entry) > len(parts):
        return False
    if len(entry) < SUBTREE_DEPTH and len(entry) != len(parts):
        return False
    return all(e in (WILD, p) for e, p in zip(entry, parts, strict=False))


class WrittenPaths:
    """The set of directory entries learned from writes, with O(depth) lookups."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self._exact: set[Parts] = set()
        self._wild: set[Parts] = set()
        for text in entries:
            self._insert(from_text(text))

    def __len__(self) -> int:
        return len(self._exact) + len(self._wild)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(to_text(e) for e in self._all()))

    def covers(self, path: str) -> bool:
        """Is a write to the file ``path`` normal under the learned entries?"""
        return self.covers_dir(directory_of(path))

    def covers_dir(self, parts: Parts) -> bool:
        for depth in range(len(parts) + 1):
            if (depth >= SUBTREE_DEPTH or depth == len(parts)) and parts[:depth] in self._exact:
                return True
        return any(_entry_matches(w, parts) for w in self._wild)

    def learn(self, path: str) -> bool:
        """Learn a write to the file ``path``; True when the model changed."""
        parts = directory_of(path)
        if self.covers_dir(parts):
            return False
        self._insert(parts)
        if parts:
            self._collapse(parts[:-1])
        return True

    def _all(self) -> set[Parts]:
        return self._exact | self._wild

    def _insert(self, entry: Parts) -> None:
        self._drop(e for e in self._all() if e != entry and _entry_matches(entry, e))
        (self._wild if WILD in entry else self._exact).add(entry)

    def _drop(self, entries: Iterable[Parts]) -> None:
        for entry in list(entries):
            self._exact.discard(entry)
            self._wild.discard(entry)

    def _collapse(self, parent: Parts) -> None:
        """Too many children of one directory: keep ``parent/*`` instead of each."""
        siblings = [e for e in self._all() if e[:-1] == parent and len(e) == len(parent) + 1]
        if len(siblings) > MAX_SIBLINGS:
            self._drop(siblings)
            self._insert((*parent, WILD))
