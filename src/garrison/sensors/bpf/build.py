"""Compile a BPF program of this package with clang, once per source and compiler.

The object is cached under ``cache_dir`` by the hash of its source and of the compiler's
version, and written atomically, so that defenders starting together do not race. No
``vmlinux.h`` is needed: the programs declare the kernel structures they read themselves and
libbpf relocates them against the running kernel's BTF (CO-RE).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path

from garrison.errors import SensorError

SOURCES = Path(__file__).parent
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "garrison"
COMPILE_TIMEOUT = 60.0
# clang -target bpf does not look in the multiarch directory that has asm/types.h.
_ARCH = {"x86_64": "x86", "aarch64": "arm64"}


def build(name: str, cache_dir: Path | None = None, sources: Path = SOURCES) -> Path:
    """The compiled object of ``NAME.bpf.c`` (in ``sources``): from the cache, or compiled now.
    SensorError when clang is missing or the compile fails."""
    source = sources / f"{name}.bpf.c"
    clang = shutil.which("clang")
    if clang is None:
        raise SensorError("clang is not installed: cannot build the BPF programs")
    version = _run([clang, "--version"]).splitlines()[0]
    digest = hashlib.sha256(source.read_bytes() + version.encode()).hexdigest()[:16]
    target = (cache_dir or DEFAULT_CACHE) / "bpf" / f"{name}-{digest}.o"
    if target.exists():
        return target
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _run([clang, *_flags(), "-c", str(source), "-o", str(partial)])
        partial.replace(target)
    except OSError as exc:
        raise SensorError(f"cannot write the BPF object to {target.parent}: {exc}") from exc
    return target


def _flags() -> list[str]:
    machine = platform.machine()
    arch = _ARCH.get(machine, machine)
    multiarch = f"/usr/include/{machine}-linux-gnu"
    return ["-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", f"-I{multiarch}"]


def _run(argv: list[str]) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SensorError(f"{argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        first = next((line for line in lines if "error" in line), lines[0])
        raise SensorError(f"BPF compile failed ({Path(argv[0]).name}): {first}")
    return done.stdout
