"""containerd's own client, ``ctr``, run as a subprocess, with its errors mapped once, here.

Why ctr and not gRPC from Python: the one Python binding on PyPI (``containerd``, generated
from containerd's .proto files) was last released in 2021 and no longer imports with a
current protobuf ("Descriptors cannot be created directly"). ctr ships with every containerd
and speaks its API exactly; its text and JSON output is parsed by the pure functions below.

Errors: ctr prints ``ctr: <message>`` and exits 1. A message about dialing or a closed
transport means containerd cannot be reached (RuntimeUnavailable), one ending in
``not found`` means the object is gone (ContainerGone), anything else is a refusal
(RuntimeRefused).
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from garrison.errors import ContainerGone, RuntimeRefused, RuntimeUnavailable

# Phrases of gRPC's and ctr's own messages when the daemon is not there or went away.
_UNREACHABLE = ("failed to dial", "connection refused", "code = Unavailable",
                "transport is closing", "error reading from server", "connection reset",
                "context deadline exceeded")  # fmt: skip
RUNNING_STATES = frozenset({"RUNNING", "PAUSED", "PAUSING"})


@dataclass(frozen=True, slots=True)
class Ctr:
    """``ctr --address ADDRESS --namespace NAMESPACE …`` with a timeout on every call."""

    address: str
    namespace: str
    binary: str = "ctr"
    timeout: float = 30.0

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--address", self.address, "--namespace", self.namespace,
                "--connect-timeout", "5s", *args]  # fmt: skip

    def run(self, *args: str, what: str = "") -> str:
        """Its stdout; ``what`` names the object a ``not found`` is about."""
        self.check_socket()
        try:
            result = subprocess.run(
                self.argv(*args), capture_output=True, text=True, timeout=self.timeout,
                check=False, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise RuntimeUnavailable(f"{self.binary} is not installed: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise RuntimeUnavailable(f"ctr {args[0]} timed out after {self.timeout:.0f} s") from exc
        if result.returncode != 0:
            raise error_of(result.stderr, what)
        return result.stdout

    def check_socket(self) -> None:
        """Fail fast when nothing listens: ctr itself waits out its dial timeout."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(5)
            try:
                probe.connect(self.address)
            except OSError as exc:
                raise RuntimeUnavailable(
                    f"containerd cannot be reached at {self.address}: {exc.strerror or exc}"
                ) from exc


def error_of(stderr: str, what: str) -> Exception:
    """The Garrison error for ctr's complaint (its last ``ctr:`` line)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    message = next((ln for ln in reversed(lines) if ln.startswith("ctr: ")), lines[-1] if lines
                   else "ctr failed")  # fmt: skip
    message = message.removeprefix("ctr: ").strip()
    if any(phrase in message for phrase in _UNREACHABLE):
        return RuntimeUnavailable(f"containerd cannot be reached: {message}")
    if message.endswith("not found"):
        return ContainerGone(what, f"{what[:12] or 'object'} is gone: {message}")
    return RuntimeRefused(f"containerd refused: {message}")


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: str
    pid: int
    status: str

    @property
    def running(self) -> bool:
        return self.status in RUNNING_STATES


def parse_tasks(text: str) -> dict[str, TaskRow]:
    """``ctr tasks list``: a header, then ``ID PID STATUS`` columns."""
    rows: dict[str, TaskRow] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[1].isdigit():
            rows[fields[0]] = TaskRow(fields[0], int(fields[1]), fields[2])
    return rows


@dataclass(frozen=True, slots=True)
class MountSpec:
    """One mount a snapshotter gives for a snapshot (``ctr snapshots mounts``)."""

    type: str
    source: str
    options: tuple[str, ...]

    def option(self, key: str) -> str | None:
        prefix = key + "="
        return next((o[len(prefix) :] for o in self.options if o.startswith(prefix)), None)


def parse_snapshot_mounts(text: str) -> list[MountSpec]:
    """``ctr snapshots mounts TARGET KEY`` prints ``mount -t TYPE SOURCE TARGET -o OPTS``
    lines (options comma-separated; ``-o`` absent when there are none)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[:2] != ["mount", "-t"]:
            continue
        options = fields[fields.index("-o") + 1].split(",") if "-o" in fields else []
        mounts.append(MountSpec(fields[2], fields[3], tuple(options)))
    return mounts


@dataclass(frozen=True, slots=True)
class ImageRow:
    name: str
    media_type: str
    digest: str


def parse_images(text: str) -> list[ImageRow]:
    """``ctr images list``: ``REF TYPE DIGEST SIZE PLATFORMS LABELS`` (no field has spaces
    but SIZE, which comes after the ones read here)."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3 and fields[2].startswith("sha256:"):
            rows.append(ImageRow(fields[0], fields[1], fields[2]))
    return rows


_MOUNTINFO_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _MOUNTINFO_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def task_rootfs(
    mountinfo: str, namespace: str, container_id: str, upper_dir: str | None
) -> str | None:
    """Where a running task's root file system is mounted: the shim mounts it at its bundle's
    ``rootfs``, ``<state>/io.containerd.runtime.v2.task/<namespace>/<id>/rootfs``. Another
    containerd on the host may have a container of the same name: when the snapshot's
    upperdir is known, it picks the mount of this one."""
    suffix = f"/io.containerd.runtime.v2.task/{namespace}/{container_id}/rootfs"
    found: list[tuple[str, Mapping[str, str]]] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or not _unescape(fields[4]).endswith(suffix):
            continue
        tail = fields[fields.index("-") + 1 :] if "-" in fields else []
        options = dict(_key_value(o) for o in tail[2].split(",")) if len(tail) >= 3 else {}
        found.append((_unescape(fields[4]), options))
    if upper_dir is not None:
        exact = [point for point, options in found if options.get("upperdir") == upper_dir]
        if exact:
            return exact[-1]
    return found[-1][0] if len(found) == 1 else None


def _key_value(option: str) -> tuple[str, str]:
    key, _, value = option.partition("=")
    return key, value


def read_text(path: str) -> str:
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as file:
        return file.read()
    return ""
