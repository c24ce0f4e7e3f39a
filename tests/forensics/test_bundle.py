"""BundleWriter against real files: what goes in comes back, memory stays bounded, faults
cost what they should. Disk faults are real: RLIMIT_FSIZE makes the kernel refuse a write
(EFBIG) as a full disk would (ENOSPC), without mounting anything."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import resource
import signal
import stat
import tarfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from garrison.errors import ForensicsError, InvalidInput
from garrison.forensics.bundle import BundleWriter, Manifest, Member, Missing
from garrison.forensics.verify import verify

SUBJECT = {"containerId": "3f2a9c1d7e4b" + "0" * 52, "containerName": "web", "reason": "test"}
BUNDLE_ID = "3f2a9c1d7e4b-20261204T101500Z"


def read_back(path: Path) -> list[tuple[str, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]


def writer(tmp_path: Path) -> BundleWriter:
    return BundleWriter(tmp_path / f"{BUNDLE_ID}.tar.gz", BUNDLE_ID, SUBJECT)


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def breaking(chunks: list[bytes], exc: BaseException) -> Iterator[bytes]:
    yield from chunks
    raise exc


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes of a file fail with EFBIG (SIGXFSZ ignored, so the write
    returns the error instead of killing the process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_round_trip_gives_back_every_member_with_the_manifest_last(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add_bytes("logs/stdout.log", b"hello\n")
    w.add_json("inspect.json", {"b": 1, "a": [1, 2]})
    w.add_stream("filesystem.tar", [b"abc", b"", b"def"])
    manifest = w.finish()
    path = tmp_path / f"{BUNDLE_ID}.tar.gz"

    members = read_back(path)
    assert [name for name, _ in members] == [
        "logs/stdout.log",
        "inspect.json",
        "filesystem.tar",
        "manifest.json",
    ]
    data = dict(members)
    assert data["inspect.json"] == b'{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    assert data["filesystem.tar"] == b"abcdef"
    assert json.loads(data["manifest.json"]) == manifest.to_json()
    for member in manifest.members:
        assert member.sha256 == hashlib.sha256(data[member.name]).hexdigest()
        assert member.size == len(data[member.name])
    assert manifest.complete
    assert manifest.subject == SUBJECT
    assert verify(path).ok
    assert files_in(tmp_path) == [path.name]  # no .partial, no spool
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_manifest_json_round_trips(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add_bytes("a", b"x")
    w.missing("logs", "the container was removed")
    manifest = w.finish()
    doc = manifest.to_json()
    assert doc["created"].endswith("Z")
    assert doc["format"] == 1
    again = Manifest.from_json(doc)
    assert again.created == pytest.approx(manifest.created, abs=1e-5)
    assert (again.members, again.missing, again.complete) == (
        (Member("a", 1, hashlib.sha256(b"x").hexdigest()),),
        (Missing("logs", "the container was removed"),),
        False,
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"format": 2}, "format"),
        ({"bundle": 3}, "bundle"),
        ({"created": "yesterday"}, "created"),
        ({"created": "2026-12-04T10:15:00"}, "created"),
        ({"subject": []}, "subject"),
        ({"complete": "yes"}, "complete"),
        ({"complete": False}, "complete"),
        ({"members": [{"name": "a", "size": -1, "sha256": "0" * 64}]}, "members[0].size"),
        ({"members": [{"name": "a", "size": True, "sha256": "0" * 64}]}, "members[0].size"),
        ({"members": [{"name": "../a", "size": 1, "sha256": "0" * 64}]}, "members[0].name"),
        ({"members": [{"name": "a", "size": 1, "sha256": "xyz"}]}, "members[0].sha256"),
        ({"members": ["a"]}, "members[0]"),
        ({"missing": [{"name": "a"}]}, "missing[0].why"),
    ],
)
def test_a_malformed_manifest_names_its_field(change: dict[str, Any], field: str) -> None:
    doc = {
        "format": 1,
        "bundle": BUNDLE_ID,
        "created": "2026-12-04T10:15:00Z",
        "subject": {},
        "complete": True,
        "members": [],
        "missing": [],
    } | change
    with pytest.raises(InvalidInput, match=f"manifest: {field}".replace("[", r"\[")):
        Manifest.from_json(doc)


def test_a_200_mib_stream_is_written_in_bounded_memory(tmp_path: Path) -> None:
    block, count = bytes(range(256)) * 4096, 200

    def chunks() -> Iterator[bytes]:
        for i in range(count):  # a new 1 MiB object each time, as a socket's reads are
            yield i.to_bytes(4, "big") + block[4:]

    expected = hashlib.sha256()
    for chunk in chunks():
        expected.update(chunk)
    w = writer(tmp_path)
    tracemalloc.start()
    try:
        w.add_stream("filesystem.tar", chunks())
        manifest = w.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert manifest.members == (Member("filesystem.tar", count << 20, expected.hexdigest()),)
    assert peak < 20 << 20


def test_a_stream_that_breaks_off_keeps_what_it_read(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add_stream("filesystem.tar", breaking([b"a" * 1000, b"b" * 24], OSError("gone")))
    manifest = w.finish()
    assert manifest.members[0].name == "filesystem.tar"
    assert manifest.members[0].size == 1024
    assert manifest.missing == (Missing("filesystem.tar", "broke off after 1024 bytes: gone"),)
    assert not manifest.complete
    assert dict(read_back(w.path))["filesystem.tar"] == b"a" * 1000 + b"b" * 24
    assert verify(w.path).ok


def test_a_stream_that_raises_at_once_is_only_missing(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add_stream("filesystem.tar", breaking([], RuntimeError("no such container")))
    manifest = w.finish()
    assert manifest.members == ()
    assert manifest.missing == (
        Missing("filesystem.tar", "broke off after 0 bytes: no such container"),
    )
    assert [name for name, _ in read_back(w.path)] == ["manifest.json"]


def test_a_spool_the_disk_refuses_loses_that_member_only(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add_bytes("before", b"1")
    with file_size_limit(1 << 20):
        w.add_stream("filesystem.tar", (b"x" * 65536 for _ in range(32)))  # 2 MiB
        w.add_bytes("after", b"2")
        manifest = w.finish()
    assert [m.name for m in manifest.members] == ["before", "after"]
    assert manifest.missing == (Missing("filesystem.tar", "could not be written: File too large"),)
    assert verify(w.path).ok
    assert files_in(tmp_path) == [w.path.name]  # the spool is gone


def test_a_write_refused_inside_the_tar_discards_the_bundle(tmp_path: Path) -> None:
    noise = random.Random(0).randbytes(1536 << 10)  # incompressible: the tar grows as much
    w = writer(tmp_path)
    with file_size_limit(2 << 20):
        w.add_stream("one", [noise])  # spool and tar both under the limit
        with pytest.raises(ForensicsError, match="could not write two"):
            w.add_stream("two", [noise])  # the spool fits, the tar passes the limit
    assert files_in(tmp_path) == []
    with pytest.raises(ForensicsError, match="already finished or aborted"):
        w.add_bytes("three", b"3")


def test_spool_and_partial_are_private_while_writing(tmp_path: Path) -> None:
    w = writer(tmp_path)
    modes: dict[str, int] = {}

    def source() -> Iterator[bytes]:
        yield b"x"
        modes.update({p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()})

    w.add_stream("filesystem.tar", source())
    w.finish()
    assert len(modes) == 2  # the bundle's .partial and the spool
    assert all(name.endswith(".partial") for name in modes)
    assert set(modes.values()) == {0o600}


class Stop(BaseException):
    """Not an Exception: like KeyboardInterrupt, it is not a broken-off source."""


def test_leaving_the_block_by_an_exception_removes_the_partial_and_the_spool(
    tmp_path: Path,
) -> None:
    w = writer(tmp_path)

    def capture() -> None:
        with w:
            w.add_bytes("a", b"1")
            w.add_stream("filesystem.tar", breaking([b"x"], Stop()))

    with pytest.raises(Stop):
        capture()
    assert files_in(tmp_path) == []
    w.abort()  # idempotent
    with pytest.raises(ForensicsError):
        w.finish()


def test_abort_removes_the_partial(tmp_path: Path) -> None:
    w = writer(tmp_path)
    w.add_bytes("a", b"1")
    assert files_in(tmp_path) == [f"{BUNDLE_ID}.tar.gz.partial"]
    w.abort()
    w.abort()
    assert files_in(tmp_path) == []


def test_abort_after_finish_keeps_the_bundle(tmp_path: Path) -> None:
    with writer(tmp_path) as w:
        w.finish()
    w.abort()
    assert files_in(tmp_path) == [w.path.name]


@pytest.mark.parametrize(
    "name",
    ["", "/etc/passwd", "..", "../x", "a/../b", "a//b", "./a", "a/", "manifest.json", "a\x1bb"],
)
def test_member_names_must_be_plain_relative_paths(tmp_path: Path, name: str) -> None:
    with writer(tmp_path) as w, pytest.raises(InvalidInput, match="member name"):
        w.add_bytes(name, b"x")


def test_a_name_is_taken_once(tmp_path: Path) -> None:
    with writer(tmp_path) as w:
        w.add_bytes("a", b"1")
        w.missing("b", "not captured")
        for name in ("a", "b"):
            with pytest.raises(InvalidInput, match="already in the bundle"):
                w.add_stream(name, [b"2"])
        assert [m.name for m in w.finish().members] == ["a"]


def test_a_subject_that_is_not_json_is_refused_before_any_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="subject"):
        BundleWriter(tmp_path / "b.tar.gz", "b", {"when": object()})
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("bundle_id", ["", ".hidden", "a/b", "a b", "x" * 101])
def test_bundle_ids_are_checked(tmp_path: Path, bundle_id: str) -> None:
    with pytest.raises(InvalidInput, match="bad bundle id"):
        BundleWriter(tmp_path / "b.tar.gz", bundle_id, {})
