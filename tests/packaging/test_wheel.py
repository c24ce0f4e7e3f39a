"""The wheel carries the BPF programs compiled, and a host without clang loads them from it.

The wheel is built for real (pip, hatchling and ``hatch_build.py``), installed with pip into a
folder of its own, and imported from there by a Python whose PATH holds no clang: the process
events source — what the defender starts for its process events — loads and attaches the
wheel's object, and nothing is compiled. This needs root and the kernel's BTF, which this
project's machines have: asserted, not skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src/garrison/sensors/bpf/proc_events.bpf.c"
PREBUILT = "garrison/sensors/bpf/prebuilt"

# Run by the installed package, with no clang on PATH: start the process events source as
# the defender does, and report where everything came from.
LOAD = """
import json, shutil, sys
from pathlib import Path
assert shutil.which("clang") is None, shutil.which("clang")
import garrison
from garrison.sensors.bpf.build import build
from garrison.sensors.bpf.proc_events import BpfProcEvents
source = BpfProcEvents(cache_dir=Path(sys.argv[1])).start()
try:
    report = {"running": source.running, "tcp": source.tcp_events}
finally:
    source.stop()
report |= {"package": garrison.__file__, "object": str(build("proc_events", Path(sys.argv[1])))}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    pip(["wheel", "--no-deps", "--wheel-dir", str(dist), str(ROOT)], cwd=ROOT)
    (built,) = dist.glob("garrison-*.whl")
    return built


def pip(args: list[str], **kwargs) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True, text=True, timeout=240, check=False, **kwargs,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_the_wheel_carries_each_program_compiled_with_its_manifest(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        manifest = json.loads(archive.read(f"{PREBUILT}/manifest.json"))
        entry = manifest["objects"]["proc_events"]
        assert archive.read(f"{PREBUILT}/{entry['object']}")[:4] == b"\x7fELF"
    assert entry["source_sha256"] == hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    assert "clang version" in entry["clang"]
    assert wheel.name.endswith(f"-py3-none-linux_{os.uname().machine}.whl")


def test_a_host_without_clang_loads_the_programs_from_the_installed_wheel(
    wheel: Path, tmp_path: Path
) -> None:
    site, bin_, cache = tmp_path / "site", tmp_path / "bin", tmp_path / "cache"
    bin_.mkdir()  # the whole PATH: nothing named clang
    pip(["install", "--no-deps", "--no-index", "--target", str(site), str(wheel)])
    # The installed folder first: it wins over the checkout this venv has on its path.
    env = {"PATH": str(bin_), "PYTHONPATH": str(site), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(cache)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["running"]
    assert report["tcp"]  # the optional socket program attached too
    assert Path(report["package"]).is_relative_to(site)
    assert Path(report["object"]) == site / PREBUILT / "proc_events.bpf.o"
    assert not cache.exists()  # nothing compiled
