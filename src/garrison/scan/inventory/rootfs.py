"""Layers stacked into one root file system view, restricted to the files the inventory reads.

Stacking follows what Docker's layer applier does (moby ``pkg/archive`` ``UnpackLayer``): a
whiteout deletes a lower path and everything under it, an opaque directory hides all lower
content below it, a non-directory entry replaces whatever a lower layer had at its path, and a
directory entry replaces a lower non-directory.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from garrison.scan.inventory.layer import LayerDelta
from garrison.scan.inventory.limits import MAX_PATH
from garrison.scan.inventory.wanted import EXACT, is_npm_link, is_wanted, normalize

MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS


@dataclass(frozen=True, slots=True)
class Rootfs:
    """The wanted files of an image, by rootfs path (``etc/os-release``), after stacking."""

    files: dict[str, bytes]
    skipped: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()
    # Symlinked npm packages (node_modules/ws → packages/ws): link → the folder it resolves to,
    # for each whose folder holds a package.json.
    npm_links: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Stack:
    """The merged state while layers are applied bottom to top."""

    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def apply(self, delta: LayerDelta) -> None:
        gone = delta.whiteouts | delta.plain | delta.links.keys() | delta.files.keys()
        for table in (self.files, self.links):
            for path in [p for p in table if _hidden(p, gone, delta.opaque, delta.dirs)]:
                del table[path]
        self.links.update(delta.links)
        self.files.update(delta.files)

    def rootfs(self, skipped: Iterable[str] = (), layers: Iterable[str] = ()) -> Rootfs:
        files = dict(self.files)
        wanted_links = [p for p in self.links if is_wanted(p)]
        for path in (*EXACT, *wanted_links):
            if path not in files:
                target = resolve(path, self.links)
                if target is not None and target in self.files:
                    files[path] = self.files[target]
        return Rootfs(files, tuple(skipped), tuple(layers), self._npm_links())

    def _npm_links(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for path in self.links:
            folder = resolve(path, self.links) if is_npm_link(path) else None
            if folder is not None and f"{folder}/package.json" in self.files:
                found[path] = folder
        return found


def _hidden(path: str, gone: set[str], opaque: set[str], dirs: set[str]) -> bool:
    """True when an upper layer's change removes this lower path."""
    if path in gone or path in dirs:
        return True
    parent = posixpath.dirname(path)
    while parent:
        if parent in gone or parent in opaque:
            return True
        parent = posixpath.dirname(parent)
    return "" in opaque  # an opaque marker at the root of the layer


def resolve(path: str, links: dict[str, str]) -> str | None:
    """Follow symlinks in every component of ``path`` inside the rootfs, like the kernel would
    with the rootfs as ``/``; None for a loop, a chain longer than MAX_LINK_HOPS or a path
    longer than MAX_PATH (the kernel's ELOOP and ENAMETOOLONG)."""
    pending = path.split("/")[::-1]  # the next component last
    done = ""
    hops = 0
    while pending:
        here = f"{done}/{pending.pop()}" if done else pending.pop()
        if len(here) > MAX_PATH:
            return None
        if here not in links:
            done = here
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            return None
        target = links[here]
        base = "" if target.startswith("/") else done
        pending.extend(
            reversed([p for p in normalize(posixpath.join(base, target)).split("/") if p])
        )
        done = ""
    return done
