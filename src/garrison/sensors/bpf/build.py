"""The object of a BPF program of this package: prebuilt in the wheel, or compiled with clang.

An installed wheel carries each program compiled when the wheel was built
(``prebuilt/``, see :mod:`garrison.sensors.bpf.compiler`): a host then needs libbpf and BTF,
not clang. That object is used only when it was made from the very source beside it, so a
source edited in a checkout is compiled again rather than a stale object loaded.

Otherwise the source is compiled with clang, once per source and compiler: the object is cached
under ``cache_dir`` by the hash of its source and of the compiler's version, and written
atomically, so that defenders starting together do not race. No ``vmlinux.h`` is needed: the
programs declare the kernel structures they read themselves and libbpf relocates them against
the running kernel's BTF (CO-RE).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from garrison.errors import SensorError
from garrison.sensors.bpf.compiler import (
    PREBUILT,
    SOURCES,
    CompileError,
    clang_version,
    compile_object,
    prebuilt_object,
)

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "garrison"


def build(
    name: str, cache_dir: Path | None = None, sources: Path = SOURCES, prebuilt: Path = PREBUILT
) -> Path:
    """The object of ``NAME.bpf.c`` (in ``sources``): the wheel's prebuilt one when it was
    made from this source, else from the cache, or compiled now. SensorError when it must be
    compiled and clang is missing or the compile fails."""
    source = sources / f"{name}.bpf.c"
    ready = prebuilt_object(name, source, prebuilt)
    if ready is not None:
        return ready
    clang = shutil.which("clang")
    if clang is None:
        raise SensorError("clang is not installed: cannot build the BPF programs")
    try:
        return _compiled(name, source, clang, cache_dir or DEFAULT_CACHE)
    except CompileError as exc:
        raise SensorError(str(exc)) from exc


def _compiled(name: str, source: Path, clang: str, cache_dir: Path) -> Path:
    version = clang_version(clang)
    digest = hashlib.sha256(source.read_bytes() + version.encode()).hexdigest()[:16]
    target = cache_dir / "bpf" / f"{name}-{digest}.o"
    if target.exists():
        return target
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        compile_object(clang, source, partial)
        partial.replace(target)
    except OSError as exc:
        raise SensorError(f"cannot write the BPF object to {target.parent}: {exc}") from exc
    return target
