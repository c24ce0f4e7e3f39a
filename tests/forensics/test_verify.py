"""verify() against real bundles, and against bundles damaged the ways files get damaged:
a member rewritten, one added or dropped, the manifest gone or bad, the file cut short."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from garrison.errors import InvalidInput
from garrison.forensics.bundle import BundleWriter
from garrison.forensics.verify import verify

Members = list[tuple[str, bytes]]


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "b.tar.gz"
    writer = BundleWriter(path, "b", {"containerId": "3f2a9c1d7e4b"})
    writer.add_json("inspect.json", {"Id": "3f2a9c1d7e4b"})
    writer.add_bytes("logs.txt", b"line\n" * 100)
    writer.add_stream("filesystem.tar", [b"\0" * 5000, b"etc/passwd"])
    writer.finish()
    return path


def rewrite(path: Path, change: Callable[[Members], Members]) -> Path:
    """The bundle's members, changed, written again as a .tar.gz beside it."""
    with tarfile.open(path, "r:gz") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    out = path.with_name("changed.tar.gz")
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in change(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def replaced(name: str, data: bytes) -> Callable[[Members], Members]:
    return lambda members: [(n, data if n == name else d) for n, d in members]


def test_a_bundle_as_written_verifies(bundle: Path) -> None:
    verdict = verify(bundle)
    assert verdict.ok
    assert verdict.problems == ()
    assert verdict.manifest is not None
    assert [m.name for m in verdict.manifest.members] == [
        "inspect.json",
        "logs.txt",
        "filesystem.tar",
    ]


def test_a_member_rewritten_in_place_fails_naming_it(bundle: Path) -> None:
    tampered = rewrite(bundle, replaced("filesystem.tar", b"\1" * 5000 + b"etc/shadow"))
    verdict = verify(tampered)
    assert not verdict.ok
    assert len(verdict.problems) == 1
    assert verdict.problems[0].startswith("filesystem.tar: SHA-256 differs (manifest ")


def test_a_member_of_another_size_says_so(bundle: Path) -> None:
    verdict = verify(rewrite(bundle, replaced("logs.txt", b"")))
    assert verdict.problems[0] == "logs.txt: size differs (manifest 500, file 0)"
    assert verdict.problems[1].startswith("logs.txt: SHA-256 differs")


def test_an_extra_member_is_reported(bundle: Path) -> None:
    verdict = verify(rewrite(bundle, lambda m: [("extra.txt", b"x"), *m]))
    assert verdict.problems == ("extra.txt: in the bundle, not in the manifest",)


def test_a_dropped_member_is_reported(bundle: Path) -> None:
    verdict = verify(rewrite(bundle, lambda m: [x for x in m if x[0] != "inspect.json"]))
    assert verdict.problems == ("inspect.json: in the manifest, not in the bundle",)


def test_a_tar_without_manifest_is_reported(bundle: Path) -> None:
    verdict = verify(rewrite(bundle, lambda m: m[:-1]))
    assert verdict.problems == ("no manifest.json",)
    assert verdict.manifest is None


def test_a_member_after_the_manifest_is_reported(bundle: Path) -> None:
    verdict = verify(rewrite(bundle, lambda m: [*m, ("late.txt", b"x")]))
    assert verdict.problems == (
        "manifest.json: not the last member (late.txt follows it)",
        "late.txt: in the bundle, not in the manifest",
    )


@pytest.mark.parametrize(
    ("manifest", "problem"),
    [
        (b"{not json", "manifest.json: not JSON"),
        (b"[]", "manifest.json: manifest: not a JSON object"),
        (json.dumps({"format": 1}).encode(), "manifest.json: manifest: members is missing"),
    ],
)
def test_a_bad_manifest_is_reported(bundle: Path, manifest: bytes, problem: str) -> None:
    verdict = verify(rewrite(bundle, replaced("manifest.json", manifest)))
    assert verdict.manifest is None
    assert len(verdict.problems) == 1
    assert verdict.problems[0].startswith(problem)


@pytest.mark.parametrize("keep", [0, 10, 300, 0.5, -9, -1])
def test_a_truncated_bundle_is_a_verdict_not_an_exception(bundle: Path, keep: float) -> None:
    data = bundle.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    bundle.write_bytes(data[:cut])
    verdict = verify(bundle)
    assert not verdict.ok
    assert verdict.problems[0].startswith(("truncated after", "not a gzip tar: empty file"))


def test_bytes_after_the_gzip_stream_are_reported(bundle: Path) -> None:
    bundle.write_bytes(bundle.read_bytes() + b"junk")
    assert verify(bundle).problems == ("corrupt after 4 member(s): Not a gzipped file (b'ju')",)


def test_a_gzip_of_something_else_is_not_a_gzip_tar(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(gzip.compress(b"plain text, not a tar " * 40))
    verdict = verify(path)
    assert not verdict.ok
    assert verdict.problems[0].startswith("not a gzip tar: ")


def test_a_file_that_is_not_gzip_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "b.tar.gz"
    path.write_bytes(b"hello")
    assert verify(path).problems[0].startswith("not a gzip tar: ")


def test_a_file_that_cannot_be_read_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read bundle .*nothing\.tar\.gz"):
        verify(tmp_path / "nothing.tar.gz")
