"""Bounded memory: inputs far past the inventory's limits, and the worst inputs within them,
go through the parsers in a child process whose peak resident set (``os.wait4``'s
``ru_maxrss``, in KiB) must stay under 200 MB. The child starts at about 32 MB and holds its
input besides (read whole, as the layer reader hands a file over); a parser that read past a
limit, split a file into a list of lines or decoded it whole would go well over.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from garrison.scan.inventory.limits import MAX_DATABASE, MAX_MANIFEST, MAX_RECORDS, MIB
from tests.cli_run import LAUNCHER

CEILING_KIB = 200 * 1024

CHILD = """
import json, sys
from pathlib import Path
kind, source, result = sys.argv[1:4]
if kind == "archive":
    import io
    from garrison.scan.inventory import read_layers
    from garrison.scan.inventory.chunks import ChunkReader, prefetched
    with open(source, "rb") as file:  # as the engine streams it: 1 MiB chunks, on a thread
        chunks = iter(lambda: file.read(1 << 20), b"")
        rootfs = read_layers(io.BufferedReader(ChunkReader(prefetched(chunks)), 1 << 20))
    out = {"files": sorted(rootfs.files), "skipped": list(rootfs.skipped)}
else:
    from garrison.scan.inventory import apk, dpkg, npm, osinfo, python
    parse = {
        "dpkg": dpkg.parse_status,
        "apk": apk.parse_installed,
        "npm": npm.parse_package_json,
        "python": python.parse_metadata,
        "os": lambda data, path: osinfo.detect_os({path: data}),
    }[kind]
    parsed = parse(Path(source).read_bytes(), "f")
    if kind == "os":
        out = {"os": parsed.family}
    else:
        out = {"packages": len(parsed.packages), "skipped": parsed.skipped[:3]}
Path(result).write_text(json.dumps(out))
"""


def run_child(kind: str, source: Path, tmp_path: Path) -> tuple[dict[str, Any], int]:
    """What the child made of ``source``, and its peak RSS in KiB."""
    result, report = tmp_path / "result.json", tmp_path / "usage.json"
    child = [sys.executable, "-c", CHILD, kind, str(source), str(result)]
    # Through a small launcher that forks it: a child pytest spawned itself would start with
    # pytest's own peak resident set (tests/cli_run.py says why).
    argv = [sys.executable, "-S", "-c", LAUNCHER, str(report), *child]
    pid = os.posix_spawn(sys.executable, argv, os.environ)
    _, status, _usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    code, peak_kib, _seconds = json.loads(report.read_text())
    assert code == 0
    return json.loads(result.read_text()), int(peak_kib)


class Many(NamedTuple):
    """``unit`` repeated to fill ``size`` bytes (whole units), written a MiB at a time."""

    unit: bytes
    size: int

    def blocks(self) -> list[bytes]:
        count = self.size // len(self.unit)
        per_block = max(1, MIB // len(self.unit))
        return [self.unit * min(per_block, count - done) for done in range(0, count, per_block)]


Piece = bytes | int | Many  # bytes as they are; an int: that many zero bytes, left as a hole


def size_of(piece: Piece) -> int:
    if isinstance(piece, Many):
        return piece.size // len(piece.unit) * len(piece.unit)
    return piece if isinstance(piece, int) else len(piece)


def write(path: Path, *pieces: Piece) -> Path:
    with path.open("wb") as file:
        for piece in pieces:
            if isinstance(piece, Many):
                file.writelines(piece.blocks())
            elif isinstance(piece, int):
                file.seek(piece, os.SEEK_CUR)
            else:
                file.write(piece)
        file.truncate()
    return path


@pytest.mark.parametrize(
    ("kind", "pieces", "note"),
    [
        (
            "dpkg",
            (b"Package: a\nVersion: 1\nDescription: ", Many(b"x", 100 * MIB), b"\n"),
            "32 MiB",
        ),
        ("apk", (b"P:a\nV:1\nT:", Many(b"x", 100 * MIB), b"\n"), "32 MiB"),
        (
            "npm",
            (b'{"name": "a", "version": "1", "readme": "', Many(b"x", 50 * MIB), b'"}'),
            "4 MiB",
        ),
        ("python", (b"Name: a\nVersion: 1\n\n", Many(b"x", 50 * MIB)), "4 MiB"),
    ],
    ids=["dpkg-100MB-field", "apk-100MB-field", "npm-50MB", "python-50MB"],
)
def test_a_file_past_its_limit_is_skipped_without_being_read(
    tmp_path: Path, kind: str, pieces: tuple[Piece, ...], note: str
) -> None:
    source = write(tmp_path / "input", *pieces)
    out, peak = run_child(kind, source, tmp_path)
    assert out["packages"] == 0
    assert out["skipped"] == [f"f: skipped, {source.stat().st_size} bytes, larger than {note}"]
    assert peak < CEILING_KIB, f"peak RSS {peak // 1024} MiB"


def test_an_os_release_of_100_mb_is_ignored(tmp_path: Path) -> None:
    source = write(tmp_path / "os-release", b"ID=debian\n", Many(b"#", 100 * MIB))
    out, peak = run_child("os", source, tmp_path)
    assert out == {"os": "unknown"}
    assert peak < CEILING_KIB, f"peak RSS {peak // 1024} MiB"


STANZA = b"Package: p\nStatus: install ok installed\nVersion: 1\n\n"


@pytest.mark.parametrize(
    ("kind", "pieces", "packages"),
    [
        # one field of nearly the whole limit, on one line
        ("dpkg", (STANZA[:-1], b"Description: ", Many(b"x", MAX_DATABASE - 100), b"\n"), 1),
        # the most stanzas the limit holds: read up to MAX_RECORDS
        ("dpkg", (Many(STANZA, MAX_DATABASE),), MAX_RECORDS),
        # a stanza of nothing but short lines that are not kept
        ("dpkg", (STANZA[:-1], Many(b"X-A: b\n", MAX_DATABASE - 100)), 1),
        ("apk", (Many(b"P:a\nV:1\n\n", MAX_DATABASE),), MAX_RECORDS),
        # the JSON that costs most per byte: empty arrays
        (
            "npm",
            (b'{"name": "a", "version": "1", "x": [', Many(b"[],", MAX_MANIFEST - 100), b"[]]}"),
            1,
        ),
        (
            "python",
            (b"Name: a\nVersion: 1\n", Many(b"Classifier: License :: X\n", MAX_MANIFEST - 100)),
            1,
        ),
        ("python", (b"Name: a\nVersion: 1\n", Many(b"X: a\n", MAX_MANIFEST - 100)), 1),
    ],
    ids=[
        "dpkg-one-line",
        "dpkg-stanzas",
        "dpkg-lines",
        "apk-stanzas",
        "npm-arrays",
        "py-classifiers",
        "py-headers",
    ],
)
def test_the_worst_file_within_its_limit_is_read_in_bounded_memory(
    tmp_path: Path, kind: str, pieces: tuple[Piece, ...], packages: int
) -> None:
    out, peak = run_child(kind, write(tmp_path / "input", *pieces), tmp_path)
    assert out["packages"] == packages
    assert peak < CEILING_KIB, f"peak RSS {peak // 1024} MiB"


def tar(*members: tuple[tarfile.TarInfo, tuple[Piece, ...]]) -> list[Piece]:
    """The pieces of a tar of ``members`` (each a header and its content's pieces)."""
    pieces: list[Piece] = []
    for info, body in members:
        info.size = sum(size_of(p) for p in body)
        pieces += [info.tobuf(tarfile.GNU_FORMAT), *body, b"\0" * (-info.size % 512)]
    return [*pieces, b"\0" * 1024]


def entry(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def test_an_image_of_huge_members_streams_through_in_bounded_memory(tmp_path: Path) -> None:
    # 100 MB named like dpkg's database, 300 MB of something else, a 100 MB pax header in
    # another layer: 500 MB streamed, the way the engine sends it, nothing of it kept.
    first = tar(
        (entry("var/lib/dpkg/status"), (100 * MIB,)),
        (entry("usr/lib/big.bin"), (300 * MIB,)),
        (entry("etc/os-release"), (b"ID=debian\n",)),
    )
    second = tar(
        (entry("././@PaxHeader", tarfile.XHDTYPE), (100 * MIB,)),
        (entry("etc/alpine-release"), (b"3.19.1\n",)),
    )
    layers = ["a" * 64 + "/layer.tar", "b" * 64 + "/layer.tar"]
    manifest = json.dumps([{"Config": "c.json", "Layers": layers}]).encode()
    source = write(
        tmp_path / "image.tar",
        *tar(
            (entry(layers[0]), tuple(first)),
            (entry(layers[1]), tuple(second)),
            (entry("manifest.json"), (manifest,)),
        ),
    )
    out, peak = run_child("archive", source, tmp_path)
    assert out["files"] == ["etc/os-release"]
    assert out["skipped"] == [
        f"layer 0: var/lib/dpkg/status: skipped, {100 * MIB} bytes, larger than 32 MiB",
        f"layer 1 (bbbbbbbbbbbb): skipped, extended header of {100 * MIB} bytes",
    ]
    assert peak < CEILING_KIB, f"peak RSS {peak // 1024} MiB"
