"""The containerd boundary of a scan: images and containers of one namespace, through ``ctr``.

What :class:`ContainerdImages` gives ``Scanner.for_containerd``:

- ``resolve``: an image by the name ``ctr images list`` shows (a short Docker name such as
  ``busybox`` is also tried as ``docker.io/library/busybox:latest``), or by its config digest
  (``sha256:…`` or 12 hex digits or more), which is what Docker calls the image id;
- ``inventory``: ``ctr images export - NAME`` read as it streams (an OCI archive, with the
  Docker ``manifest.json`` ctr adds for this platform) by the same ``read_layers`` that reads
  ``docker save``: the image is never written to disk;
- ``container``: a container by id (or by its ``nerdctl/name`` label) with its image.

Their documents are rewritten into Docker's shapes by ``scan.oci_as_docker``, which says what
maps and what does not. ctr's errors (``runtime._ctr``) are mapped here, once: an object that
is not there is NotFound, a containerd that does not answer is RuntimeUnavailable, any other
refusal is ScanError.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from typing import IO, Any

from garrison.errors import ContainerGone, NotFound, RuntimeRefused, RuntimeUnavailable, ScanError
from garrison.runtime._ctr import Ctr, ImageRow, error_of, parse_images
from garrison.runtime.containerd import NAME_LABEL, platform_manifest
from garrison.scan.inventory.archive import read_layers
from garrison.scan.inventory.build import inventory_from_files
from garrison.scan.inventory.rootfs import Rootfs
from garrison.scan.oci_as_docker import (
    container_inspect,
    container_name,
    image_history,
    image_inspect,
)
from garrison.scan.scanner import ContainerRef, ImageRef
from garrison.scan.types import Inventory

Json = Mapping[str, Any]
_INDEX_TYPES = frozenset({"application/vnd.oci.image.index.v1+json",
                          "application/vnd.docker.distribution.manifest.list.v2+json"})  # fmt: skip
_IMAGE_ID = re.compile(r"^(sha256:)?[0-9a-f]{12,64}$")
CHUNK = 1024 * 1024
EXPORT_TIMEOUT = 3600.0  # a whole image through a pipe; ctr is killed past it


class ContainerdImages:
    """The images and containers of the namespace ``namespace`` of the containerd at
    ``address``, as a scan reads them; each call runs ``ctr``."""

    def __init__(
        self, address: str, namespace: str, *, ctr: str = "ctr", timeout: float = 30.0
    ) -> None:
        self._ctr = Ctr(address, namespace, ctr, timeout)
        self._configs: dict[str, str] = {}  # target digest -> config digest
        self._names: dict[str, str] = {}  # config digest -> an image name that has it
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"containerd namespace {self._ctr.namespace} at {self._ctr.address}"

    def resolve(self, name: str) -> ImageRef:
        """The image ``name`` names (NotFound when none does), inspected."""
        with self._errors(f"image {name}"):
            rows = parse_images(self._ctr.run("images", "list"))
            row = self._find(rows, name)
            config_digest, config = self._config(row)
        names = [r.name for r in rows if r.digest == row.digest]
        inspect = image_inspect(config_digest, config, names, row.digest)
        history = image_history(config_digest, config, inspect["RepoTags"])
        with self._lock:
            self._names[config_digest] = row.name
        return ImageRef(config_digest, name, inspect, history)

    def inventory(self, ref: ImageRef) -> Inventory:
        """The packages of the image ``ref``, read from ``ctr images export`` as it streams."""
        with self._errors(f"image {ref.name}"):
            rootfs = self._export(self._export_name(ref))
        return inventory_from_files(rootfs.files, ref.id, ref.name, rootfs.skipped,
                                    rootfs.npm_links)  # fmt: skip

    def container(self, ref: str) -> ContainerRef:
        """The container ``ref`` (its id, or its ``nerdctl/name``) and its image."""
        with self._errors(f"container {ref}"):
            record = self._record(self._container_id(ref))
        image_name = str(record.get("Image") or "")
        if not image_name:
            raise NotFound(f"container {ref} has no image in {self.where}")
        try:
            image = self.resolve(image_name)
        except NotFound as exc:
            raise NotFound(f"image {image_name} of container {ref} not found in "
                           f"{self.where}") from exc  # fmt: skip
        inspect = container_inspect(record, image.id)
        return ContainerRef(str(record.get("ID") or ref), container_name(record), inspect, image)

    # ---- images --------------------------------------------------------------------------

    def _find(self, rows: list[ImageRow], name: str) -> ImageRow:
        by_name = {row.name: row for row in rows}
        for candidate in (name, normalized(name)):
            if candidate in by_name:
                return by_name[candidate]
        if _IMAGE_ID.match(name):
            return self._by_config_digest(rows, name.removeprefix("sha256:"))
        raise NotFound(f"image {name} not found in {self.where}")

    def _by_config_digest(self, rows: list[ImageRow], prefix: str) -> ImageRow:
        """The image whose config digest starts with ``prefix`` (Docker's image id)."""
        found: dict[str, ImageRow] = {}
        for row in rows:
            with contextlib.suppress(ContainerGone):  # content gone under a live name
                digest = self._config_digest(row)
                if digest.removeprefix("sha256:").startswith(prefix):
                    found.setdefault(digest, row)
        if len(found) > 1:
            raise ScanError(f"image id {prefix} is ambiguous in {self.where}")
        if not found:
            raise NotFound(f"image {prefix} not found in {self.where}")
        return next(iter(found.values()))

    def _config_digest(self, row: ImageRow) -> str:
        with self._lock:
            known = self._configs.get(row.digest)
        if known is not None:
            return known
        manifest = self._content(row.digest)
        if row.media_type in _INDEX_TYPES or "manifests" in manifest:
            try:  # the runtime's own pick: the manifest it runs
                wanted = platform_manifest(manifest)
            except ContainerGone as exc:  # no manifest for this machine: not a missing image
                raise ScanError(f"image {row.name}: {exc}") from exc
            manifest = self._content(wanted)
        digest = str(_mapping(manifest.get("config")).get("digest") or "")
        if not digest:
            raise ScanError(f"image {row.name}: its manifest names no config")
        with self._lock:
            self._configs[row.digest] = digest
        return digest

    def _config(self, row: ImageRow) -> tuple[str, Json]:
        digest = self._config_digest(row)
        return digest, self._content(digest)

    def _content(self, digest: str) -> Json:
        return _json(self._ctr.run("content", "get", digest, what=digest), f"content {digest}")

    def _export_name(self, ref: ImageRef) -> str:
        """A name of the image (ctr exports by name): the one it was resolved by."""
        with self._lock:
            name = self._names.get(ref.id)
        if name is None:
            self.resolve(ref.id)  # by its config digest, which remembers a name of it
            with self._lock:
                name = self._names[ref.id]
        return name

    def _export(self, name: str) -> Rootfs:
        """``ctr images export - NAME`` (``-`` is stdout) into ``read_layers``; the rest of
        the stream drained so that ctr ends on its own, its status then checked."""
        self._ctr.check_socket()
        argv = self._ctr.argv("images", "export", "--", "-", name)
        with tempfile.TemporaryFile() as stderr:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=stderr)  # fmt: skip
            except FileNotFoundError as exc:
                raise RuntimeUnavailable(f"{self._ctr.binary} is not installed: {exc}") from exc
            with proc, _killed_after(proc, EXPORT_TIMEOUT) as timer:
                stdout = proc.stdout
                assert stdout is not None  # stdout=PIPE
                try:
                    rootfs = read_layers(stdout)
                except ScanError as exc:
                    _drain(stdout)
                    raise _failure(proc, stderr, name, timer) or exc from exc
                _drain(stdout)  # ctr ends on its own, its status then tells
                failed = _failure(proc, stderr, name, timer)
                if failed is not None:
                    raise failed
        return rootfs

    # ---- containers ----------------------------------------------------------------------

    def _container_id(self, ref: str) -> str:
        """``ref`` when a container has that id, else the one whose ``nerdctl/name`` it is."""
        ids = self._ctr.run("containers", "list", "--quiet").split()
        if ref in ids:
            return ref
        named = self._ctr.run("containers", "list", "--quiet",
                              f'labels."{NAME_LABEL}"=={ref}').split()  # fmt: skip
        if len(named) == 1:
            return named[0]
        if named:
            raise ScanError(f"{len(named)} containers are named {ref} in {self.where}")
        raise NotFound(f"container {ref} not found in {self.where}")

    def _record(self, container_id: str) -> Json:
        text = self._ctr.run("containers", "info", "--", container_id, what=container_id)
        return _json(text, f"container {container_id}")

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ContainerGone as exc:
            raise NotFound(f"{what} not found in {self.where}") from exc
        except RuntimeRefused as exc:
            raise ScanError(f"{what}: {exc}") from exc


def normalized(name: str) -> str:
    """The name containerd keeps for a short Docker name: ``busybox`` is
    ``docker.io/library/busybox:latest`` (what ``ctr images pull`` and nerdctl store)."""
    first, _, rest = name.partition("/")
    if not rest:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in last else f"{name}:latest"


def _drain(stream: IO[bytes]) -> None:
    while stream.read(CHUNK):
        pass


def _failure(
    proc: subprocess.Popen[bytes], stderr: IO[bytes], name: str, timer: threading.Timer
) -> Exception | None:
    """Why ``ctr images export`` failed (once it ended), or None when it did not."""
    code = proc.wait()
    if code == 0:
        return None
    if not timer.is_alive() and code < 0:
        return ScanError(f"image {name}: export took longer than {EXPORT_TIMEOUT:.0f} s")
    stderr.seek(0)
    return error_of(stderr.read().decode(errors="replace"), name)


@contextlib.contextmanager
def _killed_after(proc: subprocess.Popen[bytes], seconds: float) -> Iterator[threading.Timer]:
    timer = threading.Timer(seconds, proc.kill)
    timer.daemon = True
    timer.start()
    try:
        yield timer
    finally:
        timer.cancel()
        if proc.poll() is None:  # an error left it writing into a pipe no one reads
            proc.kill()


def _json(text: str, what: str) -> Json:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScanError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ScanError(f"{what} is not a JSON object")
    return data


def _mapping(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}
