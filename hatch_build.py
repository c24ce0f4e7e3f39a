"""The wheel's build hook: compile the BPF programs once, so that hosts need libbpf, not clang.

Every ``*.bpf.c`` of ``src/garrison/sensors/bpf`` is compiled with clang, with the flags the
run-time build uses (both come from ``garrison/sensors/bpf/compiler.py``, loaded here by path:
garrison's dependencies are not installed while its wheel is built), into
``garrison/sensors/bpf/prebuilt/`` of the wheel, beside a ``manifest.json`` that records each
object's source SHA-256 and the clang version. The objects are written to a temporary folder,
never into the source tree: a checkout keeps compiling its own sources.

The syscall programs read x86_64 registers, so the wheel is tagged for the machine it was built
on (``py3-none-linux_x86_64``). An editable install compiles nothing: a checkout compiles at
run time.
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from hatchling.builders.config import BuilderConfig
from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BPF = Path("src/garrison/sensors/bpf")
IN_WHEEL = "garrison/sensors/bpf/prebuilt"


class BpfObjectsHook(BuildHookInterface[BuilderConfig]):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        clang = shutil.which("clang")
        if clang is None:
            raise SystemExit(
                "garrison's wheel carries its BPF programs compiled: building it needs clang "
                "(Debian: apt-get install clang libbpf-dev), which is not on PATH"
            )
        compiler = _load_compiler(Path(self.root) / BPF / "compiler.py")
        self._out = Path(tempfile.mkdtemp(prefix="garrison-bpf-"))
        try:
            manifest = compiler.prebuild(clang, Path(self.root) / BPF, self._out)
        except compiler.CompileError as exc:
            shutil.rmtree(self._out, ignore_errors=True)
            raise SystemExit(f"garrison's BPF programs did not compile: {exc}") from exc
        self.app.display_info(f"BPF objects compiled: {', '.join(manifest['objects'])}")
        build_data["force_include"][str(self._out)] = IN_WHEEL
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-linux_{platform.machine()}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        out = getattr(self, "_out", None)
        if out is not None:
            shutil.rmtree(out, ignore_errors=True)


def _load_compiler(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("_garrison_bpf_compiler", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
