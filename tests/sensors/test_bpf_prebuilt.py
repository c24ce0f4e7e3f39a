"""Which object ``build`` gives: the wheel's prebuilt one only when it was made from the very
source beside it on this machine kind; else clang's; else one clear error.

The prebuilt folders are made by the function the wheel's build hook runs (``prebuild``), with
the real clang; "no clang" is a PATH on which there is none.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from garrison.errors import SensorError
from garrison.sensors.bpf import compiler
from garrison.sensors.bpf.build import build

TINY = "int garrison_tiny(void) { return 0; }\n"
CLANG = shutil.which("clang")  # before any test hides it


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "tiny.bpf.c").write_text(TINY)
    return folder


@pytest.fixture
def prebuilt(tmp_path: Path, sources: Path) -> Path:
    assert CLANG is not None, "these tests compile with the real clang"
    folder = tmp_path / "prebuilt"
    folder.mkdir()
    compiler.prebuild(CLANG, sources, folder)
    return folder


@pytest.fixture
def without_clang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("clang") is None


def test_the_manifest_records_each_objects_source_hash_and_clang(
    sources: Path, prebuilt: Path
) -> None:
    manifest = json.loads((prebuilt / "manifest.json").read_text())
    entry = manifest["objects"]["tiny"]
    assert entry["source_sha256"] == compiler.source_sha256(sources / "tiny.bpf.c")
    assert entry["clang"].startswith(("Debian clang version", "clang version"))
    assert (prebuilt / entry["object"]).read_bytes()[:4] == b"\x7fELF"


@pytest.mark.usefixtures("without_clang")
def test_a_prebuilt_object_of_the_same_source_is_used_without_clang(
    tmp_path: Path, sources: Path, prebuilt: Path
) -> None:
    cache = tmp_path / "cache"
    assert build("tiny", cache, sources=sources, prebuilt=prebuilt) == prebuilt / "tiny.bpf.o"
    assert not cache.exists()  # nothing compiled


def test_an_edited_source_is_compiled_again_rather_than_its_stale_object_used(
    tmp_path: Path, sources: Path, prebuilt: Path
) -> None:
    (sources / "tiny.bpf.c").write_text(TINY.replace("return 0", "return 1"))
    built = build("tiny", tmp_path / "cache", sources=sources, prebuilt=prebuilt)
    assert built.parent == tmp_path / "cache" / "bpf"
    assert built.read_bytes() != (prebuilt / "tiny.bpf.o").read_bytes()


@pytest.mark.usefixtures("without_clang")
def test_an_edited_source_without_clang_is_the_clear_error(
    tmp_path: Path, sources: Path, prebuilt: Path
) -> None:
    (sources / "tiny.bpf.c").write_text(TINY.replace("return 0", "return 1"))
    with pytest.raises(SensorError, match=r"^clang is not installed: cannot build the BPF"):
        build("tiny", tmp_path / "cache", sources=sources, prebuilt=prebuilt)


@pytest.mark.usefixtures("without_clang")
def test_without_clang_or_a_prebuilt_object_the_error_is_clear(
    tmp_path: Path, sources: Path
) -> None:
    with pytest.raises(SensorError, match=r"^clang is not installed: cannot build the BPF"):
        build("tiny", tmp_path / "cache", sources=sources, prebuilt=tmp_path / "none")


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda m: m | {"machine": "riscv64"}, id="another-machine"),
        pytest.param(lambda m: m | {"format": 99}, id="another-format"),
        pytest.param(lambda m: {"objects": m["objects"]}, id="fields-missing"),
        pytest.param(lambda m: m | {"objects": {}}, id="program-absent"),
    ],
)
def test_a_manifest_that_does_not_fit_is_ignored(
    tmp_path: Path, sources: Path, prebuilt: Path, spoil
) -> None:
    manifest = prebuilt / "manifest.json"
    manifest.write_text(json.dumps(spoil(json.loads(manifest.read_text()))))
    assert compiler.prebuilt_object("tiny", sources / "tiny.bpf.c", prebuilt) is None
    built = build("tiny", tmp_path / "cache", sources=sources, prebuilt=prebuilt)
    assert built.parent == tmp_path / "cache" / "bpf"


def test_a_damaged_manifest_or_a_missing_object_is_ignored(sources: Path, prebuilt: Path) -> None:
    source = sources / "tiny.bpf.c"
    (prebuilt / "tiny.bpf.o").unlink()
    assert compiler.prebuilt_object("tiny", source, prebuilt) is None
    (prebuilt / "manifest.json").write_text("{not json")
    assert compiler.prebuilt_object("tiny", source, prebuilt) is None
