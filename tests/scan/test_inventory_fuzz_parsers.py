"""The package-database parsers fed random and hostile input: each gives packages and
skipped notes, never another exception, and what it gives is text a report can print.

Hostile here means shaped like the real thing: dpkg and apk stanzas with missing, repeated
and over-long fields, continuation lines, NULs and bytes that are not UTF-8; METADATA with
encoded words, multipart bodies and bare CRs; package.json nested a hundred thousand deep,
with numbers like 1e999, in UTF-16, or not an object at all.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.utils import canonicalize_name

from garrison.scan.inventory import detect_os, inventory_from_files
from garrison.scan.inventory.apk import parse_installed
from garrison.scan.inventory.dpkg import parse_status
from garrison.scan.inventory.limits import (
    MAX_DATABASE,
    MAX_FIELD,
    MAX_MANIFEST,
    MAX_NOTES,
    MAX_RECORDS,
    MAX_RELEASE,
)
from garrison.scan.inventory.npm import parse_package_json
from garrison.scan.inventory.osinfo import parse_os_release
from garrison.scan.inventory.parsed import Parsed
from garrison.scan.inventory.python import parse_metadata
from garrison.scan.types import Inventory, OSInfo, Package

DATA = Path(__file__).parent / "data"
FUZZ = settings(max_examples=150, deadline=None)
NOT_TEXT = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def is_text(value: str) -> bool:
    return len(value) <= MAX_FIELD and not any(unicodedata.category(c) in NOT_TEXT for c in value)


def assert_printable(pkg: Package) -> None:
    """Every field of a listed package is text: it can be written out and shown as it is."""
    for value in (pkg.name, pkg.version, pkg.source_name, pkg.source_version, pkg.arch):
        assert is_text(value), pkg
    assert all(is_text(license_) for license_ in pkg.licenses), pkg
    assert pkg.name
    assert pkg.version
    pkg.path.encode()


def assert_sane(parsed: Parsed, path: str) -> None:
    assert isinstance(parsed, Parsed)
    for pkg in parsed.packages:
        assert_printable(pkg)
        assert pkg.path == path
    assert len(parsed.skipped) <= MAX_NOTES + 1
    for note in parsed.skipped:
        assert note.startswith(path), note
        note.encode()  # no lone surrogate
        assert len(note) < len(path) + 400, note


# --- shared pieces of hostile input ----------------------------------------------------------

nasty_bytes = st.sampled_from(
    [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x1b[31m", b"\r", b"\x85", b"\xe2\x80\xae", b" "]
)
word = st.one_of(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789+.-~:", min_size=1, max_size=12).map(str.encode),
    st.binary(max_size=12),
)
value = st.lists(st.one_of(word, nasty_bytes), max_size=6).map(b"".join)
huge = st.sampled_from([b"x" * (MAX_FIELD + 1), b"1" * 70_000, b"\xff" * 5_000])


# --- dpkg --------------------------------------------------------------------------------------

DPKG_NAMES = [b"Package", b"Status", b"Version", b"Source", b"Architecture", b"Description"]
dpkg_name = st.one_of(
    st.sampled_from(DPKG_NAMES),
    st.sampled_from(DPKG_NAMES).map(bytes.upper),
    st.sampled_from(DPKG_NAMES).map(lambda n: n + b" "),  # "Version :" is no field
    st.binary(min_size=1, max_size=10).filter(lambda b: b":" not in b),
    st.just(b"#comment"),
    st.just(b"-dash"),
    st.just(b"x" * 100),
)
dpkg_line = st.one_of(
    st.tuples(dpkg_name, st.sampled_from([b":", b": ", b":\t", b"::"]), value).map(b"".join),
    st.tuples(dpkg_name, st.just(b": "), huge).map(b"".join),
    st.tuples(st.sampled_from([b" ", b"\t", b" .", b"  "]), value).map(b"".join),  # continuation
    st.sampled_from([b"", b" ", b"\t", b"\r", b" \t \r"]),  # blank: ends a stanza
    st.just(b"Status: install ok installed"),
    st.just(b"Status: deinstall ok config-files"),
    st.just(b"Status: purge ok not-installed"),
    value,  # garbage
)
dpkg_file = st.lists(dpkg_line, max_size=40).map(b"\n".join)
STATUS = "var/lib/dpkg/status"


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), dpkg_file), status_d=st.booleans())
def test_dpkg_status_of_any_bytes_gives_packages_and_notes(data: bytes, status_d: bool) -> None:
    assert_sane(parse_status(data, STATUS, status_d=status_d), STATUS)


valid_name = st.from_regex(r"[a-z0-9][a-z0-9+.-]{1,20}", fullmatch=True)
valid_version = st.from_regex(
    r"([1-9]:)?[0-9][A-Za-z0-9.+~]{0,10}(-[A-Za-z0-9.+~]{1,6})?", fullmatch=True
)
dpkg_package = st.fixed_dictionaries(
    {"name": valid_name, "version": valid_version},
    optional={"source": valid_name, "arch": valid_name},
).flatmap(
    lambda pkg: st.fixed_dictionaries(
        {k: st.just(v) for k, v in pkg.items()},
        optional={"source_version": valid_version} if "source" in pkg else {},
    )
)


def stanza(pkg: dict[str, str]) -> bytes:
    lines = [f"Package: {pkg['name']}", "Status: install ok installed"]
    lines.append(f"Version: {pkg['version']}")
    if "source" in pkg:
        lines.append(
            f"Source: {pkg['source']}"
            + (f" ({pkg['source_version']})" if "source_version" in pkg else "")
        )
    if "arch" in pkg:
        lines.append(f"Architecture: {pkg['arch']}")
    lines += ["Description: something", " with a continuation", " .", " and more"]
    return "\n".join(lines).encode()


def is_subsequence(wanted: list[Any], got: list[Any]) -> bool:
    rest = iter(got)
    return all(any(w == g for g in rest) for w in wanted)


@FUZZ
@given(chunks=st.lists(st.one_of(dpkg_package, dpkg_file), max_size=12))
def test_dpkg_well_formed_stanzas_are_all_read_whatever_garbled_ones_lie_between(
    chunks: list[dict[str, str] | bytes],
) -> None:
    # Each chunk is kept apart from the next by a blank line: a garbled stanza costs only
    # itself.
    good = [c for c in chunks if isinstance(c, dict)]
    data = b"\n\n".join(c if isinstance(c, bytes) else stanza(c) for c in chunks)
    parsed = parse_status(data, STATUS)
    wanted = [
        (p["name"], p["version"], p.get("source", p["name"]), p.get("source_version", p["version"]))
        for p in good
    ]
    got = [(p.name, p.version, p.match_name, p.match_version) for p in parsed.packages]
    assert is_subsequence(wanted, got), (wanted, got)


def test_dpkg_package_name_with_a_space_and_no_source_is_skipped_not_a_crash() -> None:
    # Used to raise KeyError: the bad-Source message read a Source field that was not there.
    parsed = parse_status(b"Package: two words\nStatus: i ok installed\nVersion: 1\n", STATUS)
    assert parsed.packages == []
    assert parsed.skipped == [f"{STATUS}: stanza at line 1 skipped, bad Package 'two words'"]


def test_dpkg_many_continuation_lines_take_linear_time() -> None:
    # Appending each continuation to a str in a dict copied the value each time: a million
    # one-character lines took hours. Now 2 MB of them is a few tenths of a second.
    data = b"Package: a\nStatus: i ok installed\nVersion: 1\nDescription: x\n" + b" y\n" * 700_000
    assert [p.name for p in parse_status(data, STATUS).packages] == ["a"]


def test_dpkg_notes_are_capped_and_the_rest_counted() -> None:
    parsed = parse_status(b"Status: i ok installed\n\n" * 500, STATUS)
    assert len(parsed.skipped) == MAX_NOTES + 1
    assert parsed.skipped[-1] == f"{STATUS}: {500 - MAX_NOTES} more records skipped"


def test_dpkg_control_characters_in_a_name_skip_that_package_only() -> None:
    data = (
        b"Package: evil\x1b[2J\nStatus: i ok installed\nVersion: 1\n\n"
        b"Package: good\nStatus: i ok installed\nVersion: 1\n"
    )
    parsed = parse_status(data, STATUS)
    assert [p.name for p in parsed.packages] == ["good"]
    assert parsed.skipped == [f"{STATUS}: stanza at line 1 skipped, its name holds U+001B"]


def test_dpkg_oversized_file_is_skipped_unread() -> None:
    parsed = parse_status(b"\n" * (MAX_DATABASE + 1), STATUS)
    assert parsed.packages == []
    assert parsed.skipped == [f"{STATUS}: skipped, {MAX_DATABASE + 1} bytes, larger than 32 MiB"]


def test_dpkg_stops_at_max_records() -> None:
    one = b"Package: p\nStatus: i ok installed\nVersion: 1\n\n"
    parsed = parse_status(one * (MAX_RECORDS + 3), STATUS)
    assert len(parsed.packages) == MAX_RECORDS
    assert parsed.skipped[0].endswith(f"and the rest skipped, past {MAX_RECORDS} records")


# --- apk ---------------------------------------------------------------------------------------

apk_line = st.one_of(
    st.tuples(
        st.sampled_from(list(b"PVALoCTZFRa")).map(lambda c: bytes([c])), st.just(b":"), value
    ).map(b"".join),
    st.tuples(st.sampled_from([b"P:", b"V:", b"L:"]), huge).map(b"".join),
    st.sampled_from([b"", b" ", b"\r", b"P", b":x", b"1:x", b"\xc3\xa9:x", b"PP:x"]),
    value,
)
apk_file = st.lists(apk_line, max_size=40).map(b"\n".join)
APK = "lib/apk/db/installed"


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), apk_file))
def test_apk_database_of_any_bytes_gives_packages_and_notes(data: bytes) -> None:
    assert_sane(parse_installed(data, APK), APK)


def test_apk_real_database_still_reads_whole_with_garbage_after_it() -> None:
    real = (DATA / "inv_alpine319_apk_installed").read_bytes()
    parsed = parse_installed(real + b"\n\nP:\x00\nV:1\n\n" + b"x" * 10_000, APK)
    assert len(parsed.packages) == 15
    assert len(parsed.skipped) == 2


# --- Python metadata -----------------------------------------------------------------------

PY_NAMES = [b"Name", b"Version", b"License", b"License-Expression", b"Classifier", b"Summary"]
py_header = st.one_of(
    st.tuples(st.sampled_from(PY_NAMES), st.sampled_from([b": ", b":", b" : "]), value).map(
        b"".join
    ),
    st.tuples(st.sampled_from(PY_NAMES), st.just(b": "), huge).map(b"".join),
    st.just(b"Classifier: License :: OSI Approved :: MIT License"),
    st.just(b"Name: =?utf-8?b?w6k=?="),
    st.just(b"Name: =?unknown-8bit?q?=FF?="),
    st.just(b"Content-Type: multipart/mixed; boundary=x"),
    st.just(b"Content-Transfer-Encoding: base64"),
    st.just(b"Content-Transfer-Encoding: x-uuencode"),
    st.just(b"From nobody"),
    st.tuples(st.sampled_from([b" ", b"\t", b"        "]), value).map(b"".join),
    st.sampled_from([b"", b"--x", b"begin 644 x"]),
    value,
)
py_file = st.tuples(
    st.lists(py_header, max_size=20),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.binary(max_size=200),
).map(lambda t: t[1].join(t[0]) + t[1] * 2 + t[2])
METADATA = "usr/lib/python3/dist-packages/x-1.dist-info/METADATA"


@FUZZ
@given(data=st.one_of(st.binary(max_size=2000), py_file))
def test_python_metadata_of_any_bytes_gives_a_package_or_a_note(data: bytes) -> None:
    parsed = parse_metadata(data, METADATA)
    assert_sane(parsed, METADATA)
    assert len(parsed.packages) + len(parsed.skipped) == 1


@FUZZ
@given(name=valid_name, version=valid_version, body=st.binary(max_size=500))
def test_python_name_and_version_are_read_whatever_the_body_holds(
    name: str, version: str, body: bytes
) -> None:
    header = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()
    [pkg] = parse_metadata(header + body, METADATA).packages
    assert (pkg.name, pkg.version) == (canonicalize_name(name), version)


def test_python_fields_after_the_headers_end_are_not_read() -> None:
    # As the email parser: the first line that is neither a header nor a continuation (here
    # an empty one) ends the headers; what follows is the description.
    data = b"Name: real\nVersion: 1\n\nName: fake\nLicense: GPL\n"
    [pkg] = parse_metadata(data, METADATA).packages
    assert (pkg.name, pkg.licenses) == ("real", ())


def test_python_oversized_metadata_is_skipped_unread() -> None:
    data = b"Name: a\nVersion: 1\n\n" + b"x" * MAX_MANIFEST
    assert parse_metadata(data, METADATA).skipped == [
        f"{METADATA}: skipped, {len(data)} bytes, larger than 4 MiB"
    ]


# --- npm ---------------------------------------------------------------------------------------

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
manifest = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=20), json_value),
        "version": st.one_of(st.text(max_size=20), json_value),
        "license": json_value,
        "licenses": st.lists(st.one_of(json_value, st.fixed_dictionaries({"type": json_value}))),
    },
)
encodings = st.sampled_from(["utf-8", "utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
npm_document = st.one_of(
    st.tuples(manifest, encodings).map(lambda t: json.dumps(t[0]).encode(t[1])),
    st.tuples(manifest, st.booleans()).map(
        lambda t: json.dumps(t[0], ensure_ascii=t[1]).encode("utf-8", "surrogatepass")
    ),
    json_value.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.sampled_from(
        [
            b'{"name": "a", "version": 1e999}',
            b'{"name": "a", "version": "1", "x": 1e999}',
            b'{"name": "\\ud800", "version": "1"}',
            b'{"name": "a\\u0000", "version": "1"}',
            b'{"name": "a", "version": "1", "license": "\\udfff"}',
            b'{"name": "a", "version": "1", "n": ' + b"9" * 5000 + b"}",
            b'{"name": "a", "version": NaN}',
            b"[]",
            b"null",
            b'"a string"',
            b"\xef\xbb\xbf{}",
        ]
    ),
)
PACKAGE_JSON = "srv/app/node_modules/x/package.json"


@FUZZ
@given(data=npm_document)
def test_package_json_of_any_bytes_gives_a_package_or_a_note(data: bytes) -> None:
    parsed = parse_package_json(data, PACKAGE_JSON)
    assert_sane(parsed, PACKAGE_JSON)
    assert len(parsed.packages) + len(parsed.skipped) == 1


def test_package_json_nested_a_hundred_thousand_deep_is_skipped_not_a_recursion_error() -> None:
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        parsed = parse_package_json(deep, PACKAGE_JSON)
        assert parsed.skipped == [f"{PACKAGE_JSON}: skipped, not JSON (nested too deep)"]


def test_package_json_that_is_not_an_object_is_skipped() -> None:
    for data in (b"[1, 2]", b"1e999", b'"npm"', b"null"):
        assert parse_package_json(data, PACKAGE_JSON).skipped == [
            f"{PACKAGE_JSON}: skipped, not a JSON object"
        ]


def test_package_json_with_a_lone_surrogate_name_is_skipped() -> None:
    parsed = parse_package_json(b'{"name": "x\\ud800", "version": "1"}', PACKAGE_JSON)
    assert parsed.skipped == [f"{PACKAGE_JSON}: skipped, its name holds U+D800"]


# --- os-release and the release files ----------------------------------------------------------

os_line = st.one_of(
    st.tuples(
        st.sampled_from([b"ID", b"VERSION_ID", b"PRETTY_NAME", b"NAME", b"1X", b"", b"ID "]),
        st.sampled_from([b"=", b"==", b" = "]),
        st.one_of(value, value.map(lambda v: b'"' + v + b'"'), value.map(lambda v: b"'" + v)),
    ).map(b"".join),
    st.sampled_from(
        [b"# comment", b'ID="unterminated', b"ID=a\\", b"export ID=x", b"ID=$(reboot)"]
    ),
    value,
)
os_file = st.lists(os_line, max_size=12).map(b"\n".join)


@FUZZ
@given(data=st.one_of(st.binary(max_size=500), os_file))
def test_os_release_of_any_bytes_gives_a_mapping(data: bytes) -> None:
    values = parse_os_release(data)
    assert all(key.isidentifier() for key in values)
    for text in values.values():
        text.encode()


release_files = st.dictionaries(
    st.sampled_from(
        ["etc/os-release", "usr/lib/os-release", "etc/debian_version", "etc/alpine-release"]
    ),
    st.one_of(os_file, st.binary(max_size=100)),
)


@FUZZ
@given(files=release_files)
def test_detect_os_of_any_release_files_gives_an_os(files: dict[str, bytes]) -> None:
    found = detect_os(files)
    assert isinstance(found, OSInfo)
    for text in (found.family, found.version, found.pretty_name):
        text.encode()


def test_oversized_os_release_is_left_out_and_named() -> None:
    files = {"etc/os-release": b"ID=debian\n" + b"#" * MAX_RELEASE, "etc/debian_version": b"12.7\n"}
    assert parse_os_release(files["etc/os-release"]) == {}
    inventory = inventory_from_files(files)
    assert inventory.os == OSInfo("debian", "12.7")
    assert inventory.skipped[0].startswith("etc/os-release: skipped, ")


def test_os_release_line_of_megabytes_is_refused_in_no_time() -> None:
    # shlex took five minutes over one five-megabyte line (its time grows with the square).
    assert parse_os_release(b"ID=" + b"a" * 5_000_000) == {}


# --- everything at once ------------------------------------------------------------------------

WANTED_PATHS = [
    "etc/os-release",
    "etc/debian_version",
    "etc/alpine-release",
    STATUS,
    "var/lib/dpkg/status.d/tzdata",
    APK,
    METADATA,
    "usr/lib/python3/dist-packages/crit-1.egg-info",
    PACKAGE_JSON,
    "/srv/app/node_modules/@scope/y/package.json",
    "./srv/../srv/app/node_modules/z/package.json",
]
PARSERS: dict[str, st.SearchStrategy[bytes]] = {
    "os": os_file,
    "dpkg": dpkg_file,
    "apk": apk_file,
    "python": py_file,
    "npm": npm_document,
}


@FUZZ
@given(
    files=st.dictionaries(
        st.sampled_from(WANTED_PATHS), st.one_of(st.binary(max_size=300), *PARSERS.values())
    )
)
def test_inventory_of_any_files_lists_packages_and_notes(files: dict[str, bytes]) -> None:
    inventory = inventory_from_files(files, "sha256:x", "fuzz")
    assert isinstance(inventory, Inventory)
    for pkg in inventory.packages:
        assert_printable(pkg)
    for note in inventory.skipped:
        note.encode()
