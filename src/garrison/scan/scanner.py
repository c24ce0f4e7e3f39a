"""The scanner: an image's inventory, its vulnerabilities and its compliance, cached by image id.

``garrison scan`` and the authorization gate both call :class:`Scanner`. Its outside parts
(the Docker calls, the inventory, the vulnerability matching) are plain callables, so the gate
and the rules can be exercised with a scanner built from findings made in a test;
:meth:`Scanner.for_docker` wires the real ones for a Docker engine,
:meth:`Scanner.for_containerd` for one namespace of a containerd.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests.exceptions

from garrison.errors import NotFound, RuntimeUnavailable, ScanError
from garrison.scan.compliance import check_container, check_image, check_image_for_container
from garrison.scan.report import digest_of
from garrison.scan.types import ContainerCheck, Finding, Inventory, OSInfo, ScanResult
from garrison.scan.vulndb import MatchResult

if TYPE_CHECKING:
    from garrison.scan.vulndb import VulnDB

Progress = Callable[[str], None]  # told each step's name as it starts


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image as the daemon knows it: its id, the name asked for, and its inspect/history."""

    id: str
    name: str
    inspect: Mapping[str, Any]
    history: Sequence[Mapping[str, Any]] = ()


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """A container as the daemon knows it (its inspect), with its image."""

    id: str
    name: str  # without Docker's leading "/"
    inspect: Mapping[str, Any]
    image: ImageRef


def _no_containers(ref: str) -> ContainerRef:
    raise NotFound(f"container {ref} not found")


@dataclass(frozen=True, slots=True)
class ScanParts:
    """The outside systems a scan uses."""

    resolve: Callable[[str], ImageRef]  # name or id → ImageRef; NotFound when absent
    inventory: Callable[[ImageRef], Inventory]
    # The findings, or a MatchResult that also names the packages it could not match.
    match: Callable[[Inventory], Sequence[Finding] | MatchResult]
    stamp: Callable[[], object] = lambda: None  # changes when the vulnerability data changes
    # id or name → ContainerRef; NotFound when absent (the gate's scanner needs none)
    container: Callable[[str], ContainerRef] = _no_containers


class Scanner:
    """Scans images and keeps the newest results per image id (LRU, in memory)."""

    def __init__(self, parts: ScanParts, max_cached: int = 256) -> None:
        self.parts = parts
        self.max_cached = max_cached
        self._cache: OrderedDict[str, tuple[object, ScanResult]] = OrderedDict()
        self._lock = threading.Lock()
        self._image_locks: dict[str, threading.Lock] = {}

    @classmethod
    def for_docker(cls, client: docker.DockerClient, vulndb: VulnDB | None) -> Scanner:
        """A scanner over a Docker engine and (when given) a vulnerability database."""
        match, stamp = _matching(vulndb)
        return cls(
            ScanParts(
                resolve=lambda name: resolve_image(client, name),
                inventory=lambda ref: _inventory(client, ref),
                match=match,
                stamp=stamp,
                container=lambda ref: resolve_container(client, ref),
            )
        )

    @classmethod
    def for_containerd(cls, address: str, namespace: str, vulndb: VulnDB | None) -> Scanner:
        """A scanner over one namespace of the containerd at ``address`` (through ``ctr``;
        see ``scan.containerd``) and (when given) a vulnerability database."""
        from garrison.scan.containerd import ContainerdImages  # noqa: PLC0415 (imports this)

        images = ContainerdImages(address, namespace)
        match, stamp = _matching(vulndb)
        return cls(
            ScanParts(
                resolve=images.resolve,
                inventory=images.inventory,
                match=match,
                stamp=stamp,
                container=images.container,
            )
        )

    def resolve(self, image: str) -> ImageRef:
        return self.parts.resolve(image)

    def cached(self, image_id: str) -> ScanResult | None:
        """The cached result for an image id, if the vulnerability data has not changed."""
        with self._lock:
            entry = self._cache.get(image_id)
            if entry is None or entry[0] != self.parts.stamp():
                return None
            self._cache.move_to_end(image_id)
            return entry[1]

    def scan(
        self, image: str, *, refresh: bool = False, progress: Progress | None = None
    ) -> ScanResult:
        """The result for ``image`` (a name or an id): from the cache, or scanned now."""
        tell = progress or (lambda _step: None)
        tell("resolve")
        ref = self.parts.resolve(image)
        return self.scan_ref(ref, refresh=refresh, progress=tell)

    def scan_ref(
        self, ref: ImageRef, *, refresh: bool = False, progress: Progress | None = None
    ) -> ScanResult:
        """As :meth:`scan`, for an image already resolved; one scan at a time per image."""
        with self._image_lock(ref.id):
            hit = None if refresh else self.cached(ref.id)
            if hit is not None:
                return _renamed(hit, ref.name)
            stamp = self.parts.stamp()
            result = self._scan_now(ref, progress or (lambda _step: None))
            self._remember(ref.id, stamp, result)
            return result

    def check_container(self, ref: str) -> ContainerCheck:
        """A container's compliance checks and its image's as they hold for it (its user
        overrides the image's USER), none of them cached: a container's configuration is not
        its image's."""
        found = self.parts.container(ref)
        image = found.image
        of_image = check_image_for_container(
            found.inspect, check_image(image.inspect, image.history)
        )
        issues = check_container(found.inspect) + of_image
        digest = digest_of(image.inspect, image.name)
        return ContainerCheck(found.id, found.name, image.name, image.id, digest, tuple(issues))

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def _scan_now(self, ref: ImageRef, tell: Progress) -> ScanResult:
        tell("compliance")
        compliance = tuple(check_image(ref.inspect, ref.history))
        tell("inventory")
        inventory = self.parts.inventory(ref)
        tell("vulnerabilities")
        matched = self.parts.match(inventory)
        if isinstance(matched, MatchResult):
            # An installed version no ordering can read is reported, never silently dropped.
            problems = inventory.skipped + matched.skipped
            return ScanResult(inventory, matched.findings, compliance, problems)
        return ScanResult(inventory, tuple(matched), compliance, inventory.skipped)

    def _remember(self, image_id: str, stamp: object, result: ScanResult) -> None:
        with self._lock:
            self._cache[image_id] = (stamp, result)
            self._cache.move_to_end(image_id)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)

    @contextmanager
    def _image_lock(self, image_id: str) -> Iterator[None]:
        with self._lock:
            lock = self._image_locks.setdefault(image_id, threading.Lock())
        with lock:
            yield


def _renamed(result: ScanResult, name: str) -> ScanResult:
    if not name or result.inventory.image_name == name:
        return result
    return replace(result, inventory=replace(result.inventory, image_name=name))


def _no_match(_inventory: Inventory) -> list[Finding]:
    return []


Match = Callable[[Inventory], Sequence[Finding] | MatchResult]


def _matching(vulndb: VulnDB | None) -> tuple[Match, Callable[[], object]]:
    """ScanParts' ``match`` and ``stamp`` for a vulnerability database, or for none."""
    if vulndb is None:
        return _no_match, lambda: None
    return (lambda inv: vulndb.match_detailed(inv.packages, inv.os)), vulndb.stamp


def resolve_image(client: docker.DockerClient, name: str) -> ImageRef:
    """Inspect an image and read its history (both read-only GETs the gate lets through)."""
    with docker_errors(f"image {name}"):
        image = client.images.get(name)
        history = image.history()
    return ImageRef(id=str(image.id), name=name, inspect=image.attrs, history=history or [])


def resolve_container(client: docker.DockerClient, ref: str) -> ContainerRef:
    """Inspect a container, then its image with the image's history."""
    with docker_errors(f"container {ref}"):
        attrs: dict[str, Any] = client.containers.get(ref).attrs
    with docker_errors(f"image of container {ref}"):
        image = client.images.get(str(attrs.get("Image", "")))
        history = image.history()
    created_from = (attrs.get("Config") or {}).get("Image") or image.id
    image_ref = ImageRef(str(image.id), str(created_from), image.attrs, history or [])
    name = str(attrs.get("Name", ref)).lstrip("/")
    return ContainerRef(str(attrs["Id"]), name, attrs, image_ref)


def _inventory(client: docker.DockerClient, ref: ImageRef) -> Inventory:
    from garrison.scan.inventory.engine import inventory_of  # noqa: PLC0415 (heavy import)

    inventory = inventory_of(client, ref.id)
    return replace(inventory, image_id=ref.id, image_name=ref.name)


def empty_inventory(ref: ImageRef) -> Inventory:
    """An inventory with nothing in it, for scanners that only look at compliance."""
    return Inventory(ref.id, ref.name, OSInfo("unknown", ""), ())


@contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Map Docker SDK errors to Garrison's, once, here."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise NotFound(f"{what} not found") from exc
    except docker.errors.NotFound as exc:
        raise NotFound(f"{what} not found") from exc
    except docker.errors.APIError as exc:
        raise ScanError(f"{what}: {exc.explanation or exc}") from exc
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
        raise RuntimeUnavailable(f"cannot reach the Docker engine: {exc}") from exc
