"""Stacking the layers of a ``docker save`` archive: whiteouts, opaque directories, symlinks
and corrupt layers, on archives built here as real tar bytes in the engine's format."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from garrison.errors import ScanError
from garrison.scan.inventory import inventory_from_files, read_layers
from garrison.scan.inventory.chunks import ChunkReader
from garrison.scan.inventory.rootfs import resolve

DATA = Path(__file__).parent / "data"
OS_RELEASE = (DATA / "inv_debian12_os-release").read_bytes()
STATUS = (DATA / "inv_debian12_dpkg_status").read_bytes()

Entry = tuple[str, str, bytes | str]  # kind ("file", "dir", "sym", "hard"), path, data/target


def layer(*entries: Entry) -> bytes:
    """A layer tar as Docker writes them (paths relative, no leading slash)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, path, payload in entries:
            info = tarfile.TarInfo(path)
            if kind == "file":
                assert isinstance(payload, bytes)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[
                kind
            ]
            info.linkname = str(payload)
            tar.addfile(info)
    return out.getvalue()


def archive(layers: list[bytes], *, manifest: bool = True, dedupe: bool = False) -> io.BytesIO:
    """A ``docker save`` archive (Docker ≤ 24 layout): ID/layer.tar members sorted by id,
    manifest.json last; with ``dedupe`` a repeated layer is a symlink to the first copy."""
    names, written, members = [], {}, []
    for data in layers:
        digest = hashlib.sha256(data).hexdigest()
        name = f"{hashlib.sha256(digest.encode() + str(len(names)).encode()).hexdigest()}"
        if dedupe and digest in written:
            members.append((f"{name}/layer.tar", None, f"../{written[digest]}/layer.tar"))
        else:
            written[digest] = name
            members.append((f"{name}/layer.tar", data, ""))
        names.append(f"{name}/layer.tar")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path, data, link in sorted(members):
            info = tarfile.TarInfo(path)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        if manifest:
            body = json.dumps([{"Config": "c.json", "RepoTags": None, "Layers": names}]).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out.seek(0)
    return out


def npm(name: str) -> Entry:
    body = json.dumps({"name": name, "version": "1.0.0"}).encode()
    return ("file", f"srv/app/node_modules/{name}/package.json", body)


def packages_of(stream: io.BytesIO) -> set[str]:
    rootfs = read_layers(stream)
    return {p.name for p in inventory_from_files(rootfs.files).packages}


def test_upper_file_replaces_lower_file() -> None:
    lower = layer(("file", "./var/lib/dpkg/status", STATUS))
    upper = layer(
        ("file", "var/lib/dpkg/status", b"Package: only\nStatus: i ok installed\nVersion: 1\n")
    )
    assert packages_of(archive([lower, upper])) == {"only"}


def test_whiteout_deletes_a_lower_file() -> None:
    lower = layer(("file", "etc/os-release", OS_RELEASE), ("file", "var/lib/dpkg/status", STATUS))
    upper = layer(("file", "var/lib/dpkg/.wh.status", b""))
    rootfs = read_layers(archive([lower, upper]))
    assert set(rootfs.files) == {"etc/os-release"}


def test_whiteout_of_a_directory_deletes_everything_below_it() -> None:
    meta = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    site = "usr/lib/python3/dist-packages"
    lower = layer(
        ("file", f"{site}/demo-1.0.dist-info/METADATA", meta),
        ("file", f"{site}/keep-2.0.dist-info/METADATA", meta.replace(b"demo", b"keep")),
    )
    upper = layer(("file", f"{site}/.wh.demo-1.0.dist-info", b""))
    assert packages_of(archive([lower, upper])) == {"keep"}


def test_opaque_directory_hides_lower_content_but_keeps_its_own() -> None:
    lower = layer(npm("left-pad"), npm("lodash"), ("file", "etc/os-release", OS_RELEASE))
    upper = layer(("file", "srv/app/node_modules/.wh..wh..opq", b""), npm("right-pad"))
    rootfs = read_layers(archive([lower, upper]))
    assert {p.name for p in inventory_from_files(rootfs.files).packages} == {"right-pad"}
    assert "etc/os-release" in rootfs.files


def test_whiteout_in_a_lower_layer_does_not_touch_upper_files() -> None:
    first = layer(npm("a"))
    second = layer(("file", "srv/app/node_modules/.wh.a", b""))
    third = layer(npm("a"))
    assert packages_of(archive([first, second, third])) == {"a"}
    assert packages_of(archive([third, second])) == set()


def test_relative_os_release_symlink_is_followed() -> None:
    # as in garrison-test/debian:12: ./etc/os-release -> ../usr/lib/os-release
    only = layer(
        ("sym", "./etc/os-release", "../usr/lib/os-release"),
        ("file", "./usr/lib/os-release", OS_RELEASE),
    )
    rootfs = read_layers(archive([only]))
    assert rootfs.files["etc/os-release"] == OS_RELEASE


def test_symlink_across_layers_and_through_a_directory_link() -> None:
    lower = layer(("file", "usr/lib/os-release", b"ID=alpine\n"), ("sym", "lib", "usr/lib"))
    upper = layer(("sym", "etc/os-release", "/lib/os-release"))
    files = read_layers(archive([lower, upper])).files
    assert files["etc/os-release"] == b"ID=alpine\n"


def test_symlink_replaced_by_a_file_in_an_upper_layer() -> None:
    lower = layer(
        ("sym", "etc/os-release", "../usr/lib/os-release"),
        ("file", "usr/lib/os-release", b"ID=a\n"),
    )
    upper = layer(("file", "etc/os-release", b"ID=b\n"))
    assert read_layers(archive([lower, upper])).files["etc/os-release"] == b"ID=b\n"


def test_file_replaced_by_a_directory_and_by_a_symlink() -> None:
    lower = layer(npm("x"), ("file", "etc/os-release", b"ID=old\n"))
    upper = layer(
        ("sym", "srv/app/node_modules/x", "/elsewhere"),
        ("dir", "etc/os-release", ""),
    )
    rootfs = read_layers(archive([lower, upper]))
    assert rootfs.files == {}


def test_symlink_loop_resolves_to_nothing() -> None:
    links = {"a": "b", "b": "a"}
    assert resolve("a/file", links) is None
    assert resolve("etc/os-release", {"etc": "/usr/etc"}) == "usr/etc/os-release"
    assert resolve("x/y", {"x": "../../../z"}) == "z/y"  # .. stops at the root


def test_hard_link_to_a_wanted_file_shares_its_bytes() -> None:
    meta = b"Metadata-Version: 2.1\nName: twin\nVersion: 3\n"
    only = layer(
        ("file", "a/site-packages/twin-3.dist-info/METADATA", meta),
        (
            "hard",
            "b/site-packages/twin-3.dist-info/METADATA",
            "a/site-packages/twin-3.dist-info/METADATA",
        ),
    )
    files = read_layers(archive([only])).files
    assert files["b/site-packages/twin-3.dist-info/METADATA"] == meta


def test_unwanted_files_are_not_kept() -> None:
    only = layer(
        ("file", "usr/bin/tool", b"\x7fELF" + b"\0" * 4096),
        ("file", "etc/os-release", OS_RELEASE),
        ("file", "srv/app/node_modules/x/lib/package.json", b"{}"),
    )
    assert set(read_layers(archive([only])).files) == {"etc/os-release"}


def test_corrupt_layer_is_skipped_recorded_and_the_others_read() -> None:
    good = layer(("file", "etc/os-release", OS_RELEASE), npm("kept"))
    truncated = layer(npm("lost"), ("file", "big", b"x" * 20000))[:1536]
    later = layer(npm("later"))
    rootfs = read_layers(archive([good, truncated, later]))
    inventory = inventory_from_files(rootfs.files, skipped=rootfs.skipped)
    assert {p.name for p in inventory.packages} == {"kept", "later"}
    [why] = [s for s in inventory.skipped if s.startswith("layer 1 ")]
    assert "skipped" in why


def test_garbage_layer_is_skipped() -> None:
    rootfs = read_layers(archive([b"\x1f\x8b\x08garbage, not gzip" * 40, layer(npm("b"))]))
    assert len(rootfs.skipped) == 1
    assert rootfs.skipped[0].startswith("layer 0 (")


def test_layer_shared_through_a_symlinked_layer_tar_is_read_once_and_applied_twice() -> None:
    base = layer(npm("a"))
    drop = layer(("file", "srv/app/node_modules/.wh.a", b""))
    assert packages_of(archive([base, drop, base], dedupe=True)) == {"a"}


def test_oci_layout_with_gzip_blobs() -> None:
    # Docker >= 25 saves the OCI layout: blobs/sha256/HEX, layers possibly compressed.
    blob = gzip.compress(layer(("file", "etc/alpine-release", b"3.19.1\n")))
    hexname = hashlib.sha256(blob).hexdigest()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, body in (
            (f"blobs/sha256/{hexname}", blob),
            ("blobs/sha256/" + "c" * 64, b'{"config": true}'),
            ("manifest.json", json.dumps([{"Layers": [f"blobs/sha256/{hexname}"]}]).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out.seek(0)
    rootfs = read_layers(out)
    assert rootfs.files == {"etc/alpine-release": b"3.19.1\n"}
    assert rootfs.skipped == ()


def test_archive_without_manifest_is_a_scan_error() -> None:
    with pytest.raises(ScanError, match=r"no readable manifest\.json"):
        read_layers(archive([layer(npm("a"))], manifest=False))


def test_stream_that_is_not_a_tar_is_a_scan_error() -> None:
    with pytest.raises(ScanError, match="not a readable image archive"):
        read_layers(io.BytesIO(b"this is not a tar archive" * 100))


def test_archive_streamed_from_uneven_chunks_reads_the_same() -> None:
    # Image.save() yields chunks of any size; ChunkReader turns them into a file for tarfile.
    raw = archive([layer(("file", "etc/os-release", OS_RELEASE)), layer(npm("a"))]).getvalue()
    sizes = [1, 511, 513, 7, 4096, 100_000]
    chunks, at = [], 0
    while at < len(raw):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append(raw[at : at + size])
        at += size
    rootfs = read_layers(io.BufferedReader(ChunkReader(iter(chunks))))
    assert rootfs.files == read_layers(io.BytesIO(raw)).files
    assert set(rootfs.files) == {"etc/os-release", "srv/app/node_modules/a/package.json"}
