"""The layer and archive readers fed random and hostile tars: a layer gives a change set or
the error of a corrupt tar, an archive a root file system or a ScanError, never another
exception; and what they keep stays inside the image's root, within the limits.

Hostile means member names with ``../``, a leading ``/``, a NUL, bytes that are not UTF-8 or
more than PATH_MAX characters; links that loop or climb out; whiteouts of anything; sizes a
header claims but the data does not hold; extended headers tarfile itself trips over.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.errors import ScanError
from garrison.scan.inventory import inventory_from_files, read_layers
from garrison.scan.inventory.chunks import ChunkReader, prefetched
from garrison.scan.inventory.layer import LayerDelta, read_layer
from garrison.scan.inventory.limits import (
    MAX_HEADER,
    MAX_LAYERS,
    MAX_NOTES,
    MAX_PATH,
    MAX_RELEASE,
)
from garrison.scan.inventory.rootfs import MAX_LINK_HOPS, resolve
from garrison.scan.inventory.wanted import is_wanted, normalize
from garrison.scan.types import Inventory

FUZZ = settings(max_examples=120, deadline=None)
CORRUPT = (tarfile.TarError, EOFError, OSError)  # what read_layer may raise: a corrupt layer


@dataclass(frozen=True)
class Member:
    kind: str  # "file", "dir", "sym", "hard", "fifo"
    name: str
    data: bytes = b""  # a file's content
    target: str = ""  # a link's target
    pax: tuple[tuple[str, str], ...] = ()


def tar_of(members: list[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, errors="surrogateescape") as tar:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type = {
                "file": tarfile.REGTYPE,
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[member.kind]
            info.linkname = member.target
            info.pax_headers = dict(member.pax)
            info.size = len(member.data) if member.kind == "file" else 0
            tar.addfile(info, io.BytesIO(member.data) if member.kind == "file" else None)
    return out.getvalue()


def docker_save(layers: list[bytes], names: list[str] | None = None) -> io.BytesIO:
    """A ``docker save`` archive holding ``layers`` as ``N/layer.tar``; its manifest lists
    ``names`` (by default the layers, in order)."""
    paths = [f"{index:064d}/layer.tar" for index in range(len(layers))]
    manifest = json.dumps([{"Config": "c.json", "Layers": paths if names is None else names}])
    members = [Member("file", p, data) for p, data in zip(paths, layers, strict=True)]
    return io.BytesIO(tar_of([*members, Member("file", "manifest.json", manifest.encode())]))


def pax_record(key: bytes, value: bytes) -> bytes:
    """One ``LENGTH key=value\\n`` record, its length counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def raw_pax_member(records: bytes, name: str = "etc/os-release", data: bytes = b"ID=x\n") -> bytes:
    """A tar whose first member carries a pax header of ``records`` written as they are."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, len(records)
    member = tarfile.TarInfo(name)
    member.size = len(data)
    return b"".join(
        [
            header.tobuf(tarfile.USTAR_FORMAT),
            records + b"\0" * (-len(records) % 512),
            member.tobuf(tarfile.USTAR_FORMAT),
            data + b"\0" * (-len(data) % 512),
            b"\0" * 1024,
        ]
    )


def assert_inside_root(delta: LayerDelta) -> None:
    """What a layer records names paths of the image's root, as the stack compares them."""
    for path in [*delta.files, *delta.links, *delta.dirs, *delta.plain]:
        assert path == normalize(path), path
        assert not path.startswith(("/", "../")), path
        assert path != ".."
        assert len(path) <= MAX_PATH
        path.encode()  # no lone surrogate from a name that was not UTF-8
    assert all(is_wanted(path) for path in delta.files)
    assert all(len(target) <= MAX_PATH for target in delta.links.values())
    assert len(delta.skipped) <= MAX_NOTES + 2


def read_layer_or_corrupt(data: bytes) -> LayerDelta | None:
    try:
        delta = read_layer(io.BytesIO(data))
    except CORRUPT:
        return None
    assert_inside_root(delta)
    return delta


# --- strategies ----------------------------------------------------------------------------

WANTED = [
    "etc/os-release",
    "usr/lib/os-release",
    "etc/debian_version",
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/tzdata",
    "lib/apk/db/installed",
    "usr/lib/python3/dist-packages/x-1.dist-info/METADATA",
    "srv/app/node_modules/a/package.json",
]
hostile_name = st.one_of(
    st.sampled_from(WANTED),
    st.sampled_from(WANTED).map(lambda p: "./" + p),
    st.sampled_from(WANTED).map(lambda p: "/" + p),
    st.sampled_from(WANTED).map(lambda p: "../../" + p),
    st.sampled_from(WANTED).map(lambda p: p.replace("/", "/x/../", 1)),
    st.sampled_from(WANTED).map(lambda p: p + "\x00.txt"),
    st.sampled_from(WANTED).map(lambda p: "a" * (MAX_PATH + 1) + "/" + p),
    st.sampled_from(["etc", "usr/lib", "var/lib/dpkg", "srv/app/node_modules", "", "lib"]).map(
        lambda d: f"{d}/.wh..wh..opq"
    ),
    st.sampled_from(WANTED).map(lambda p: p.rsplit("/", 1)[0] + "/.wh." + p.rsplit("/", 1)[1]),
    st.sampled_from([".wh.", "etc/.wh..", "etc/.wh...", ".wh..wh.plnk", "a/\udcff", "é/ü", ""]),
    st.sampled_from([".", "/", "//", "..", "../..", "a//b/", "\x00"]),
    st.text(max_size=30),
)
link_target = st.one_of(
    hostile_name,
    st.sampled_from(["../usr/lib/os-release", "/usr/lib/os-release", "..", "/", "lib", "self"]),
    st.just("a/" * (MAX_PATH // 2 + 1)),
)
data = st.one_of(
    st.binary(max_size=100),
    st.sampled_from(
        [b"ID=debian\nVERSION_ID=12\n", b"Package: p\nStatus: i ok installed\nVersion: 1\n"]
    ),
    st.just(b'{"name": "a", "version": "1"}'),
)
pax = st.lists(
    st.tuples(
        st.sampled_from(["path", "linkpath", "size", "mtime", "uid", "comment", "hdrcharset"]),
        st.one_of(st.text(max_size=20), st.sampled_from(["-1", "nan", "1e999", "BINARY", "99"])),
    ),
    max_size=2,
).map(tuple)
member = st.one_of(
    st.builds(Member, st.just("file"), hostile_name, data, st.just(""), pax),
    st.builds(Member, st.sampled_from(["sym", "hard"]), hostile_name, st.just(b""), link_target),
    st.builds(Member, st.sampled_from(["dir", "fifo"]), hostile_name),
)
fmt = st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])


COMPRESSIONS = [bytes, lambda raw: gzip.compress(raw, mtime=0), bz2.compress, lzma.compress]


@st.composite
def layer_tar(draw: st.DrawFn) -> bytes:
    members = draw(st.lists(member, max_size=8))
    try:
        raw = tar_of(members, draw(fmt))
    except ValueError:  # USTAR cannot hold a long name: the writer refuses, not our reader
        raw = tar_of(members, tarfile.PAX_FORMAT)
    return draw(st.sampled_from(COMPRESSIONS))(raw)


@st.composite
def damaged(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` with a few bytes overwritten, or cut short."""
    data = bytearray(raw)
    for _ in range(draw(st.integers(0, 4))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return bytes(data[:cut])


# --- one layer -----------------------------------------------------------------------------


@FUZZ
@given(raw=layer_tar())
def test_any_layer_gives_a_change_set_inside_the_root_or_is_corrupt(raw: bytes) -> None:
    read_layer_or_corrupt(raw)


@FUZZ
@given(raw=layer_tar().flatmap(damaged))
def test_a_damaged_layer_gives_a_change_set_or_is_corrupt(raw: bytes) -> None:
    read_layer_or_corrupt(raw)


@FUZZ
@given(raw=st.binary(max_size=3000))
def test_random_bytes_as_a_layer_are_corrupt_or_empty(raw: bytes) -> None:
    read_layer_or_corrupt(raw)


def test_climbing_and_absolute_names_land_inside_the_root() -> None:
    raw = tar_of(
        [
            Member("file", "../../../etc/os-release", b"ID=a\n"),
            Member("file", "/var/lib/dpkg/status", b"Package: p\n"),
            Member("sym", "lib", target="../../../usr/lib"),
        ]
    )
    delta = read_layer(io.BytesIO(raw))
    assert set(delta.files) == {"etc/os-release", "var/lib/dpkg/status"}
    assert delta.links == {"lib": "../../../usr/lib"}


def test_names_that_are_not_utf8_come_out_as_text() -> None:
    raw = tar_of(
        [Member("file", "srv/app/node_modules/\udcff/package.json", b"{}")], tarfile.GNU_FORMAT
    )
    [path] = read_layer(io.BytesIO(raw)).files
    assert path == "srv/app/node_modules/\ufffd/package.json"


def test_names_and_link_targets_longer_than_path_max_are_left_out() -> None:
    long = "a" * MAX_PATH + "/etc/os-release"
    raw = tar_of(
        [
            Member("file", long, b"ID=x\n"),
            Member("sym", "etc/os-release", target="b/" * MAX_PATH),
        ]
    )
    delta = read_layer(io.BytesIO(raw))
    assert delta.files == {}
    assert delta.links == {}
    assert delta.plain == {"etc/os-release"}  # still hides what a lower layer had there
    assert delta.skipped == [f"names longer than {MAX_PATH} characters left out: 1"]


@pytest.mark.parametrize(
    "records",
    [
        pax_record(b"GNU.sparse.size", b"x"),
        pax_record(b"GNU.sparse.map", b"1,a"),
        pax_record(b"GNU.sparse.major", b"1") + pax_record(b"GNU.sparse.minor", b"0"),
        pax_record(b"hdrcharset", b"\xff\xfe"),
    ],
    ids=["sparse-size", "sparse-map", "sparse-1.0", "hdrcharset"],
)
def test_extended_headers_tarfile_trips_over_make_a_corrupt_layer(records: bytes) -> None:
    # CPython 3.11's tarfile let these out as ValueError / UnicodeDecodeError.
    with pytest.raises(tarfile.ReadError, match="malformed extended header"):
        read_layer(io.BytesIO(raw_pax_member(records, data=b"x\n")))


def test_a_chain_of_thousands_of_long_name_headers_is_corrupt_not_a_recursion_error() -> None:
    block = tarfile.TarInfo("././@LongLink")
    block.type, block.size = tarfile.GNUTYPE_LONGNAME, 100
    one = block.tobuf(tarfile.GNU_FORMAT) + b"x" * 100 + b"\0" * 412
    with pytest.raises(tarfile.ReadError, match="chained too deep"):
        read_layer(io.BytesIO(one * 5_000 + b"\0" * 1024))


def test_an_extended_header_past_the_limit_is_refused_before_it_is_read() -> None:
    records = pax_record(b"comment", b"x" * MAX_HEADER)
    with pytest.raises(tarfile.ReadError, match="extended header of"):
        read_layer(io.BytesIO(raw_pax_member(records)))


def test_a_wanted_file_over_its_limit_is_skipped_and_still_shadows() -> None:
    raw = tar_of([Member("file", "etc/os-release", b"#" * (MAX_RELEASE + 1))])
    delta = read_layer(io.BytesIO(raw))
    assert delta.files == {}
    assert delta.plain == {"etc/os-release"}
    assert delta.skipped == [
        f"etc/os-release: skipped, {MAX_RELEASE + 1} bytes, larger than 64 KiB"
    ]


def test_a_header_claiming_more_than_the_data_holds_is_corrupt() -> None:
    info = tarfile.TarInfo("var/lib/dpkg/status")
    info.size = 8 << 30  # 8 GiB
    raw = info.tobuf(tarfile.GNU_FORMAT) + b"Package: p\n" + b"\0" * 501
    with pytest.raises(CORRUPT):
        read_layer(io.BytesIO(raw))


def test_the_image_budget_stops_keeping_files_and_says_so() -> None:
    raw = tar_of(
        [Member("file", f"srv/node_modules/p{i}/package.json", b"{}" * 100) for i in range(5)]
    )
    delta = read_layer(io.BytesIO(raw), room=600)  # one file costs its bytes, path and 256
    assert len(delta.files) == 1
    assert len(delta.skipped) == 4
    assert "the image's wanted files pass 256 MiB" in delta.skipped[0]


def test_skipped_files_of_a_layer_are_named_up_to_the_cap_then_counted() -> None:
    links = [
        Member("hard", f"srv/node_modules/p{i}/package.json", target="nowhere") for i in range(200)
    ]
    delta = read_layer(io.BytesIO(tar_of(links)))
    assert len(delta.skipped) == MAX_NOTES + 1
    assert delta.skipped[-1] == f"{200 - MAX_NOTES} more files skipped"


# --- the archive ---------------------------------------------------------------------------


def assert_rootfs_usable(stream: io.BytesIO) -> None:
    try:
        rootfs = read_layers(stream)
    except ScanError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert message.startswith("not a readable image archive: ")
        return
    for path in rootfs.files:
        assert path == normalize(path)
        assert not path.startswith("../")
    inventory = inventory_from_files(rootfs.files, skipped=rootfs.skipped)
    assert isinstance(inventory, Inventory)
    for note in inventory.skipped:
        note.encode()


@FUZZ
@given(layers=st.lists(layer_tar(), max_size=4))
def test_any_stack_of_layers_gives_a_root_and_an_inventory(layers: list[bytes]) -> None:
    assert_rootfs_usable(docker_save(layers))


@FUZZ
@given(
    raw=st.lists(layer_tar(), max_size=3)
    .map(lambda ls: docker_save(ls).getvalue())
    .flatmap(damaged)
)
def test_a_damaged_archive_gives_a_root_or_a_scan_error(raw: bytes) -> None:
    assert_rootfs_usable(io.BytesIO(raw))


@pytest.mark.parametrize(
    "manifest",
    [
        b'[{"Layers": 5}]',
        b'[{"Layers": [1, null]}]',
        b'[{"Layers": {"a": 1}}]',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"Layers": []}',
        b"[]",
        b"[1e999]",
        b"\xff\xfe",
        json.dumps([{"Layers": ["x"] * (MAX_LAYERS + 1)}]).encode(),
    ],
    ids=["int", "non-str", "dict", "deep", "object", "empty", "number", "not-utf8", "too-many"],
)
def test_a_manifest_that_is_not_a_list_of_layers_is_a_scan_error(manifest: bytes) -> None:
    raw = tar_of([Member("file", "manifest.json", manifest)])
    with pytest.raises(ScanError, match="not a readable image archive"):
        read_layers(io.BytesIO(raw))


def test_a_manifest_naming_one_layer_many_times_names_notes_once_per_cap() -> None:
    links = [
        Member("hard", f"srv/node_modules/p{i}/package.json", target="nowhere") for i in range(60)
    ]
    names = ["0" * 64 + "/layer.tar"] * 300
    rootfs = read_layers(docker_save([tar_of(links)], names))
    assert len(rootfs.skipped) == MAX_NOTES + 1
    assert rootfs.skipped[-1].startswith("image archive: ")


# --- symlinks --------------------------------------------------------------------------------

link_part = st.sampled_from(["a", "b", "etc", "usr", "lib", "..", ".", ""])
link_path = st.lists(link_part, min_size=1, max_size=6).map("/".join)
links = st.dictionaries(
    link_path.map(normalize).filter(bool),
    st.one_of(link_path, link_path.map(lambda p: "/" + p), st.just("x/" * 3000)),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(path=link_path.map(normalize), table=links)
def test_resolving_any_links_ends_inside_the_root_or_in_none(
    path: str, table: dict[str, str]
) -> None:
    found = resolve(path, table)
    if found is not None:
        assert found == normalize(found)
        assert len(found) <= MAX_PATH


def test_a_chain_of_links_past_the_hop_limit_resolves_to_none_quickly() -> None:
    table = {f"l{i}": f"l{i + 1}" for i in range(MAX_LINK_HOPS + 5)}
    assert resolve("l0/file", table) is None
    deep = {"d": "/".join(["d"] * 2000)}  # each hop multiplies the path: ENAMETOOLONG
    assert resolve("d/x", deep) is None


# --- chunks ----------------------------------------------------------------------------------


@FUZZ
@given(
    payload=st.binary(max_size=5000),
    cuts=st.lists(st.integers(0, 700), max_size=30),
    size=st.integers(1, 4096),
)
def test_a_stream_read_from_chunks_is_the_same_bytes_however_cut(
    payload: bytes, cuts: list[int], size: int
) -> None:
    chunks, at = [], 0
    for cut in cuts:  # empty chunks included
        chunks.append(payload[at : at + cut])
        at += cut
    chunks.append(payload[at:])
    reader = io.BufferedReader(ChunkReader(iter(chunks)), size)
    assert reader.read() == payload


def test_a_producer_error_reaches_the_reader_after_the_chunks_before_it() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"one"
        yield b"two"
        raise ScanError("engine went away")

    stream = prefetched(chunks(), depth=1)
    assert [next(stream), next(stream)] == [b"one", b"two"]
    with pytest.raises(ScanError, match="engine went away"):
        next(stream)


def test_a_reader_that_stops_early_stops_the_producer_thread() -> None:
    stream = prefetched((b"x" * 10 for _ in range(10_000)), depth=2)
    assert next(stream) == b"x" * 10
    stream.close()
    assert "garrison-image-reader" not in {t.name for t in threading.enumerate()}
