"""How the BPF programs are compiled with clang, and the prebuilt objects a wheel carries.

One place for both users: :mod:`garrison.sensors.bpf.build`, which compiles at run time in a
checkout, and the wheel's build hook (``hatch_build.py``), which compiles once when the wheel is
built and records each object in ``prebuilt/manifest.json`` beside it. The hook loads this file
by its path, before garrison or its dependencies are installed: it must import nothing but the
standard library.

The objects are CO-RE: the kernel structures they read are declared in the sources and
relocated by libbpf against the running kernel's BTF, so one object serves every kernel with
BTF. Not every machine: the syscall programs read x86_64 registers and syscall numbers
(``asm/unistd.h``), so an object is only used on the machine kind it was built for.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from pathlib import Path

SOURCES = Path(__file__).parent
PREBUILT = SOURCES / "prebuilt"  # present only in an installed wheel
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
COMPILE_TIMEOUT = 60.0
# clang -target bpf does not look in the multiarch directory that has asm/types.h.
_ARCH = {"x86_64": "x86", "aarch64": "arm64"}


class CompileError(Exception):
    """clang could not be run, or refused a source. The message is one line for a user."""


def flags() -> list[str]:
    """clang's arguments besides the source and the output."""
    machine = platform.machine()
    arch = _ARCH.get(machine, machine)
    multiarch = f"/usr/include/{machine}-linux-gnu"
    return ["-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", f"-I{multiarch}"]


def clang_version(clang: str) -> str:
    """The first line of ``clang --version`` (``Debian clang version 14.0.6``)."""
    return run([clang, "--version"]).splitlines()[0]


def compile_object(clang: str, source: Path, output: Path) -> None:
    """Compile ``source`` into ``output``; CompileError when clang fails."""
    run([clang, *flags(), "-c", str(source), "-o", str(output)])


def run(argv: list[str]) -> str:
    """The standard output of ``argv``; CompileError with clang's first error line if it fails."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CompileError(f"{argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no message"]
        first = next((line for line in lines if "error" in line), lines[0])
        raise CompileError(f"BPF compile failed ({Path(argv[0]).name}): {first}")
    return done.stdout


def source_sha256(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def prebuild(clang: str, sources: Path, out: Path) -> dict[str, object]:
    """Compile every ``NAME.bpf.c`` of ``sources`` into ``out/NAME.bpf.o`` and write the
    manifest there; returns it. CompileError when clang fails."""
    version = clang_version(clang)
    objects: dict[str, dict[str, str]] = {}
    for source in sorted(sources.glob("*.bpf.c")):
        name = source.name.removesuffix(".bpf.c")
        compile_object(clang, source, out / f"{name}.bpf.o")
        objects[name] = {
            "object": f"{name}.bpf.o",
            "source": source.name,
            "source_sha256": source_sha256(source),
            "clang": version,
        }
    manifest: dict[str, object] = {
        "format": MANIFEST_FORMAT,
        "machine": platform.machine(),
        "objects": objects,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def prebuilt_object(name: str, source: Path, prebuilt: Path = PREBUILT) -> Path | None:
    """The prebuilt object of ``source`` when ``prebuilt`` has one made from these very bytes
    on this machine kind; None otherwise (no wheel, an edited source, another manifest)."""
    try:
        manifest = json.loads((prebuilt / MANIFEST).read_text())
        entry = manifest["objects"][name]
        fits = (
            manifest["format"] == MANIFEST_FORMAT
            and manifest["machine"] == platform.machine()
            and entry["source_sha256"] == source_sha256(source)
        )
        target = prebuilt / entry["object"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no manifest, or not one this version writes
    return target if fits and target.is_file() else None
