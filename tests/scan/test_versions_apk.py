"""Alpine versions as ``apk version -t`` orders and refuses them.

apk-tools is not packaged for Debian 12, so the reference here is a second, independent
reading of apk-tools 3's ``src/version.c``: a lexer and a token-by-token walk, as apk does it
(our ``ApkVersion`` builds a sort key instead). Both are pinned to apk by the tables below:
cases from apk-tools' own ``test/unit/version.data``, and musl's, reasoned from the rules.
Then the two readings must agree on 10,000 generated pairs. The musl advisory is the
case of issue 17: ``_git`` versions were refused and musl on Alpine 3.17-3.20 never matched.
"""

from __future__ import annotations

import functools
import itertools
import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.scan.inventory.apk import parse_installed
from garrison.scan.types import OSInfo, Package
from garrison.scan.vulndb import VersionError, VulnDB, affects
from garrison.scan.vulndb._apk import ApkVersion
from garrison.scan.vulndb._versions import comparator, parse

DATA = Path(__file__).parent / "data"
apk_cmp = comparator(ApkVersion)

# --- The reference: apk's lexer and comparison loop, read again -----------------------------

KINDS = ("first", "digit", "letter", "suffix", "suffix_no", "hash", "revision", "end")
LEVEL = {kind: level for level, kind in enumerate(KINDS)}
# apk's suffix enum: the four pre-release suffixes, then "" (none), then the post-release ones.
SUFFIXES = ("alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p")
PRE = SUFFIXES[:4]
DIGITS = string.digits
LOWER = string.ascii_lowercase
HEX = "0123456789abcdef"

Token = tuple[str, str]


def span(text: str, start: int, chars: str) -> int:
    end = start
    while end < len(text) and text[end] in chars:
        end += 1
    return end


def lex(text: str) -> list[Token] | None:
    """apk's tokens of ``text``, or ``None`` where apk's lexer meets an invalid token."""
    end = span(text, 0, DIGITS)
    if end == 0:
        return None
    tokens = [("first", text[:end])]
    while end < len(text):
        step = next_token(text, end, tokens[-1][0])
        if step is None:
            return None
        tokens.append(step[0])
        end = step[1]
    return [*tokens, ("end", "")]


def next_token(text: str, at: int, previous: str) -> tuple[Token, int] | None:
    char, level = text[at], LEVEL[previous]
    if char in LOWER and level <= LEVEL["digit"]:
        return ("letter", char), at + 1
    if char == "_" and level <= LEVEL["suffix_no"]:
        end = span(text, at + 1, LOWER)
        name = text[at + 1 : end]
        return (("suffix", name), end) if name and name in SUFFIXES else None
    if char == "~" and level < LEVEL["hash"]:
        return run_of(text, at + 1, HEX, "hash")
    start, kind = number_start(text, at, previous)
    return run_of(text, start, DIGITS, kind) if kind else None


def number_start(text: str, at: int, previous: str) -> tuple[int, str]:
    """Where the number of a ``.N``, suffix number or ``-rN`` starts, and its kind."""
    if text[at] == "." and LEVEL[previous] <= LEVEL["digit"]:
        return at + 1, "digit"
    if text[at] in DIGITS and previous == "suffix":
        return at, "suffix_no"
    if text.startswith("-r", at) and LEVEL[previous] < LEVEL["revision"]:
        return at + 2, "revision"
    return at, ""


def run_of(text: str, start: int, chars: str, kind: str) -> tuple[Token, int] | None:
    end = span(text, start, chars)
    return ((kind, text[start:end]), end) if end > start else None


def reference_cmp(a: str, b: str) -> int:
    """``apk version -t a b`` as -1, 0, 1; both must be valid."""
    tokens_a, tokens_b = lex(a), lex(b)
    assert tokens_a is not None
    assert tokens_b is not None
    for (kind_a, text_a), (kind_b, text_b) in zip(tokens_a, tokens_b, strict=False):
        if kind_a != kind_b:
            return kinds_differ(kind_a, text_a, kind_b, text_b)
        if kind_a == "end":
            return 0
        order = token_cmp(kind_a, text_a, text_b)
        if order:
            return order
    raise AssertionError("unreachable: both token lists end with 'end'")


def kinds_differ(kind_a: str, text_a: str, kind_b: str, text_b: str) -> int:
    if kind_a == "suffix" and text_a in PRE:
        return -1
    if kind_b == "suffix" and text_b in PRE:
        return 1
    return -1 if LEVEL[kind_a] > LEVEL[kind_b] else 1


def token_cmp(kind: str, a: str, b: str) -> int:
    if kind == "digit" and (a.startswith("0") or b.startswith("0")):
        return sign((a > b) - (a < b))
    if kind in ("first", "digit", "suffix_no", "revision"):
        # apk_blob_pull_uint: a uint64_t, no overflow check
        return sign(int(a) % 2**64 - int(b) % 2**64)
    if kind == "suffix":
        return sign(SUFFIXES.index(a) - SUFFIXES.index(b))
    return sign((a > b) - (a < b))  # letter, hash: bytes


def sign(n: int) -> int:
    return (n > 0) - (n < 0)


# --- apk's own cases (apk-tools test/unit/version.data) ---------------------------------------

ORDERED = [
    ("1.2.4-r4", "1.2.4_git20230717-r4"),  # a post-release suffix beats a revision
    ("1.2.4_git20230717-r4", "1.2.4_git20230717-r5"),
    ("1.2.4_git20230717-r4", "1.2.5-r0"),
    ("1.2.4_git20230716", "1.2.4_git20230717"),
    ("1.2.4_rc1", "1.2.4_cvs1"),
    ("1.2.4_cvs1", "1.2.4_svn1"),
    ("1.2.4_svn1", "1.2.4_git1"),
    ("1.2.4_git1", "1.2.4_hg1"),
    ("1.2.4_hg1", "1.2.4_p1"),
    ("0.1.0_alpha", "0.1.0_alpha2"),
    ("0.1.0_alpha_pre2", "0.1.0_alpha"),  # a pre-release suffix after a suffix lowers it
    ("1.1_alpha1", "1.1"),
    ("0.8_beta4", "4.8-r1"),
    ("1.3_pre1-r1", "1.3.2"),
    ("6.0_pre1", "6.0"),
    ("6.0", "6.0_p1"),
    ("1.0_p9-r0", "1.0_p10-r0"),
    ("3.1_p16", "3.1_p17"),
    ("1.0.0_pre20191002222144-r0", "1.0.0_pre20210530193627-r0"),
    ("2.3.0b-r1", "2.3.0b-r2"),
    ("1.0.4-r3", "1.0.4-r4"),
    ("1.0.2", "1.0.2-r6"),  # a revision beats none
    ("3.0.15-r9", "3.0.15-r10"),
    ("1.2.9.1", "1.2.9.1-r1"),
    ("1.3-r0", "1.3.1-r0"),  # a digit beats a revision
    ("1.2", "1.2.1"),
    ("1.0.0", "006"),  # the first number is a number, leading zeros or not
    ("8.2.0", "8.2.001"),  # later ones with a leading zero compare as text
    ("8.2.0015", "8.2.002"),
    ("1.0~1234", "1.0~2345"),
    ("1.0~1234-r0", "1.0~1234-r1"),
    ("1.0~1234-r1", "1.0~2345-r0"),
]
EQUAL = [("0.1.0_alpha", "0.1.0_alpha"), ("0.2.0-r1", "0.2.0-r1"), ("1.0_p01", "1.0_p1")]
VALID = ["1.2", "0.1_pre2", "0.1_pre2~1234abcd", "0.1_p1_pre2", "0.1_git20240101_pre1", "1a"]
INVALID = [
    "", "0.1bc", "0.1a1", "0.1a.1", "0.1_pre2~", "0.1_pre2~1234xbcd", "0.1_pre2~1234abcd_pre1",
    "0.1_foobar", "0.1-pre1.1", "0.1-r", "0.1-r2_pre1", "0.1-r2-r3", "0.1-r2.1", ".1", "a",
    "_pre1", "-r1", "0.1_", "0.1_-r0", "0.1__alpha", "0.1_1_alpha", "v1.0", " 1.0", "1.0\n",
    "1.0~ABCD", "1.0_GIT1", "1.0_post1", "\u0661.0",  # an Arabic-Indic one
]  # fmt: skip


@pytest.mark.parametrize(("lower", "higher"), ORDERED)
def test_apk_orders_its_own_test_cases(lower: str, higher: str) -> None:
    assert apk_cmp(lower, higher) == -1
    assert apk_cmp(higher, lower) == 1
    assert reference_cmp(lower, higher) == -1  # the reference is pinned to apk too


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_apk_equal_versions(a: str, b: str) -> None:
    assert apk_cmp(a, b) == reference_cmp(a, b) == 0
    assert parse(ApkVersion, a) == parse(ApkVersion, b)
    assert hash(parse(ApkVersion, a)) == hash(parse(ApkVersion, b))


@pytest.mark.parametrize("version", VALID)
def test_apk_accepts_what_apk_accepts(version: str) -> None:
    assert str(parse(ApkVersion, version)) == version
    assert lex(version) is not None


@pytest.mark.parametrize("version", INVALID)
def test_apk_refuses_what_apk_refuses(version: str) -> None:
    with pytest.raises(VersionError, match="not a valid ApkVersion"):
        parse(ApkVersion, version)
    assert lex(version) is None


def test_apk_every_comparison_operator_agrees() -> None:
    # univers' old class left <= and >= to attrs' string comparison ("1.0-r10" >= "1.0-r9")
    low, high = parse(ApkVersion, "1.0-r9"), parse(ApkVersion, "1.0-r10")
    assert low < high
    assert low <= high
    assert high > low
    assert high >= low
    assert low != high


def test_apk_numbers_wrap_at_64_bits_as_apk_reads_them() -> None:
    assert apk_cmp(f"1.{2**64 + 5}", "1.5") == reference_cmp(f"1.{2**64 + 5}", "1.5") == 0


# --- 10,000 generated pairs against the reference -------------------------------------------

# Each field is one draw from a list (10,000 pairs must take seconds, and hypothesis pays per
# draw); the lists hold realistic numbers, dates, leading zeros and numbers past 64 bits.
NUMBERS = ["0", "1", "2", "3", "9", "10", "12", "00", "01", "001", "010", "0015", "002",
           "20230717", "20240101", "18446744073709551615", "18446744073709551616",
           "18446744073709551617", "99999999999999999999999"]  # fmt: skip
SUFFIX_PIECES = [f"_{name}{n}" for name in SUFFIXES if name for n in ["", *NUMBERS[:8], "20230717"]]


def joined(pieces: list[str], longest: int, blanks: int = 0) -> list[str]:
    """Every concatenation of up to ``longest`` pieces, the empty one ``blanks`` times more."""
    runs = [""] * (blanks + 1)
    for length in range(1, longest + 1):
        runs += ["".join(run) for run in itertools.product(pieces, repeat=length)]
    return runs


# The fields of a version: first, dotted components, letter, suffixes, hash, revision.
APK_FIELDS = (
    st.sampled_from(NUMBERS),
    st.sampled_from(joined([f".{n}" for n in NUMBERS], 2) + joined([".0", ".1", ".01"], 3)),
    st.sampled_from(["", "", "", "a", "b", "z"]),
    st.sampled_from(joined(SUFFIX_PIECES, 1, blanks=90) + joined(SUFFIX_PIECES[::5], 2)),
    st.sampled_from(["", "", "", "~0", "~1234", "~2345", "~abcd", "~f00d"]),
    st.sampled_from(["", "", *(f"-r{n}" for n in NUMBERS)]),
)


@st.composite
def apk_pairs(draw: st.DrawFn) -> tuple[str, str]:
    """Two versions sharing their first fields, so that the comparison reaches the later
    tokens instead of stopping at the first number."""
    a = [draw(field) for field in APK_FIELDS]
    shared = draw(st.integers(0, len(APK_FIELDS)))
    b = a[:shared] + [draw(field) for field in APK_FIELDS[shared:]]
    return "".join(a), "".join(b)


@settings(max_examples=10_000)
@given(apk_pairs())
def test_apk_orders_10000_pairs_as_the_apk_reference(pair: tuple[str, str]) -> None:
    a, b = pair
    assert apk_cmp(a, b) == reference_cmp(a, b), pair


# Pieces that make valid and invalid versions alike.
pieces = st.sampled_from(
    ["1", "0", "01", "12", ".", "a", "z", "A", "_", "_git", "_p", "_rc", "_pre", "_foo", "~",
     "~ab", "-", "-r", "-r1", "r", "+", " ", "v"]
)  # fmt: skip


@settings(max_examples=1_500)
@given(st.lists(pieces, max_size=8).map("".join))
def test_apk_accepts_exactly_what_the_apk_lexer_accepts(text: str) -> None:
    try:
        parse(ApkVersion, text)
    except VersionError:
        assert lex(text) is None, text
    else:
        assert lex(text) is not None, text


@settings(max_examples=200)
@given(st.lists(st.tuples(*APK_FIELDS).map("".join), min_size=2, max_size=8))
def test_apk_sorting_is_consistent_with_pairwise_order(versions: list[str]) -> None:
    ordered = sorted(versions, key=functools.cmp_to_key(apk_cmp))
    for lower, higher in itertools.pairwise(ordered):
        assert reference_cmp(lower, higher) <= 0


# --- Issue 17: musl's _git versions on Alpine 3.19 ------------------------------------------

ALPINE_319 = OSInfo("alpine", "3.19.1", "Alpine Linux v3.19")


def musl_advisory() -> dict[str, Any]:
    """Written in the shape of the Alpine secdb records osv.dev serves (ALPINE-CVE-…)."""

    def musl(release: str, fixed: str) -> dict[str, Any]:
        events = [{"introduced": "0"}, {"fixed": fixed}]
        return {
            "package": {
                "ecosystem": f"Alpine:{release}",
                "name": "musl",
                "purl": "pkg:apk/alpine/musl?arch=source",
            },
            "ranges": [{"type": "ECOSYSTEM", "events": events}],
        }

    return {
        "schema_version": "1.6.0",
        "id": "ALPINE-CVE-2025-26519",
        "modified": "2025-03-03T12:00:00Z",
        "published": "2025-02-14T04:15:09Z",
        "upstream": ["CVE-2025-26519"],
        "details": "musl libc 0.9.13 through 1.2.5 before 1.2.6 has an out-of-bounds write "
        "vulnerability when an attacker can trigger iconv conversion of untrusted EUC-KR text "
        "to UTF-8.",
        "affected": [
            musl("v3.18", "1.2.4-r3"),
            musl("v3.19", "1.2.4_git20230717-r5"),
            musl("v3.20", "1.2.5-r1"),
        ],
        "references": [
            {"type": "ADVISORY", "url": "https://security.alpinelinux.org/vuln/CVE-2025-26519"}
        ],
    }


@pytest.fixture
def musl_db(tmp_path: Path) -> VulnDB:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "ALPINE-CVE-2025-26519.json").write_text(json.dumps(musl_advisory()))
    db = VulnDB(tmp_path / "vulndb.sqlite")
    report = db.import_path(folder)
    assert (report.imported, report.bad_ranges, report.problems) == (1, 0, [])
    return db


def alpine_319_packages() -> list[Package]:
    """The packages of alpine:3.19, from its lib/apk/db/installed."""
    data = (DATA / "inv_alpine319_apk_installed").read_bytes()
    return parse_installed(data, "lib/apk/db/installed").packages


def test_musl_git_version_of_alpine_319_matches_its_advisory(musl_db: VulnDB) -> None:
    result = musl_db.match_detailed(alpine_319_packages(), ALPINE_319)
    assert result.skipped == ()  # no package refused for its version
    found = {(f.package.name, f.installed_version, f.fixed_version) for f in result.findings}
    assert found == {
        ("musl", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5"),
        ("musl-utils", "1.2.4_git20230717-r4", "1.2.4_git20230717-r5"),
    }


def test_musl_at_its_git_fix_is_not_reported(musl_db: VulnDB) -> None:
    fixed = Package("Alpine", "musl", "1.2.4_git20230717-r5")
    later = Package("Alpine", "musl", "1.2.4_git20230717-r10")
    assert musl_db.match([fixed, later], ALPINE_319) == []


def test_musl_range_introduced_at_a_git_snapshot_orders_as_apk() -> None:
    events = [{"introduced": "1.2.4_git20230717-r0"}, {"fixed": "1.2.4_git20230717-r5"}]
    entry = {
        "package": {"ecosystem": "Alpine:v3.19", "name": "musl"},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    assert affects("Alpine", "1.2.4-r3", entry) is None  # the release is below its snapshot
    assert affects("Alpine", "1.2.4_git20230717-r0", entry) == "1.2.4_git20230717-r5"
    assert affects("Alpine", "1.2.4_git20230717-r4", entry) == "1.2.4_git20230717-r5"
    assert affects("Alpine", "1.2.5-r0", entry) is None
