"""Version ordering per ecosystem, checked through the OSV range semantics: a version below
``fixed`` is affected, one at or above it is not; ``last_affected`` is inclusive."""

from __future__ import annotations

import functools
import itertools

from hypothesis import given
from hypothesis import strategies as st
from univers.versions import DebianVersion

from garrison.scan.vulndb import affects
from garrison.scan.vulndb._versions import comparator


def below_fix(ecosystem: str, version: str, fixed: str) -> bool:
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}
    return affects(ecosystem, version, entry) is not None


def up_to_last(ecosystem: str, version: str, last: str) -> bool:
    events = [{"introduced": "0"}, {"last_affected": last}]
    return (
        affects(ecosystem, version, {"ranges": [{"type": "ECOSYSTEM", "events": events}]})
        is not None
    )


def assert_ordered(ecosystem: str, lower: str, higher: str) -> None:
    """``lower`` < ``higher`` as the OSV semantics see it, from every side."""
    assert below_fix(ecosystem, lower, higher)
    assert not below_fix(ecosystem, higher, higher)
    assert not below_fix(ecosystem, higher, lower)
    assert up_to_last(ecosystem, lower, higher)
    assert up_to_last(ecosystem, higher, higher)
    assert not up_to_last(ecosystem, higher, lower)


# --- Debian -------------------------------------------------------------------------------

numbers = st.integers(min_value=0, max_value=40)
upstreams = st.builds(
    lambda a, b, c, dfsg: f"{a}.{b}.{c}{'+dfsg' if dfsg else ''}",
    numbers,
    numbers,
    numbers,
    st.booleans(),
)
revisions = st.builds(str, st.integers(min_value=1, max_value=9))


@given(upstreams, upstreams, st.integers(min_value=0, max_value=4))
def test_debian_a_higher_epoch_wins_over_any_upstream(a: str, b: str, epoch: int) -> None:
    assert_ordered("Debian", f"{epoch}:{a}" if epoch else a, f"{epoch + 1}:{b}")


def test_debian_epoch_one_of_1_0_is_above_2_0() -> None:
    assert_ordered("Debian", "2.0", "1:1.0")


@given(upstreams, st.sampled_from(["rc", "beta", "alpha", "pre"]), st.integers(0, 9))
def test_debian_tilde_sorts_before_the_release(upstream: str, tag: str, n: int) -> None:
    assert_ordered("Debian", f"{upstream}~{tag}{n}", upstream)
    assert_ordered("Debian", f"{upstream}~{tag}{n}-1", f"{upstream}-1")


@given(upstreams, revisions, st.integers(1, 20))
def test_debian_security_update_sorts_above_its_base_revision(
    upstream: str, revision: str, update: int
) -> None:
    base = f"{upstream}-{revision}"
    assert_ordered("Debian", base, f"{base}+deb12u{update}")
    assert_ordered("Debian", f"{base}+deb12u{update}", f"{base}+deb12u{update + 1}")
    # A backport to stable (~deb12u1) sorts below the unstable upload it comes from.
    assert_ordered("Debian", f"{base}~deb12u{update}", base)


def test_debian_concrete_bookworm_versions() -> None:
    assert_ordered("Debian", "1.0~rc1", "1.0")
    assert_ordered("Debian", "1.0-1", "1.0-1+deb12u1")
    assert_ordered("Debian", "3.0.11-1~deb12u2", "3.0.22-1~deb12u2")
    assert_ordered("Debian", "2.36-9+deb12u9", "2.36-9+deb12u10")  # numeric, not text


# --- Alpine -------------------------------------------------------------------------------

# apk's order: pre-releases, the release, then the post-release (VCS snapshot, patch) suffixes.
APK_SUFFIXES = ["_alpha", "_beta", "_pre", "_rc", "", "_cvs", "_svn", "_git", "_hg", "_p"]
apk_bases = st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(1, 30), numbers, numbers)


@given(
    apk_bases,
    st.lists(st.integers(0, len(APK_SUFFIXES) - 1), min_size=2, max_size=2, unique=True),
    st.integers(1, 9),
    st.integers(1, 9),
)
def test_apk_suffixes_order_alpha_beta_pre_rc_release_cvs_svn_git_hg_p(
    base: str, picks: list[int], n: int, m: int
) -> None:
    low, high = sorted(picks)
    lower = base + APK_SUFFIXES[low] + (str(n) if APK_SUFFIXES[low] else "")
    higher = base + APK_SUFFIXES[high] + (str(m) if APK_SUFFIXES[high] else "")
    assert_ordered("Alpine", lower, higher)


@given(apk_bases, st.integers(0, 30), st.integers(1, 30))
def test_apk_revisions_compare_as_numbers(base: str, revision: int, step: int) -> None:
    assert_ordered("Alpine", f"{base}-r{revision}", f"{base}-r{revision + step}")


def test_apk_revision_ten_is_above_nine() -> None:
    # univers' Alpine class left >= to attrs' string comparison; ours must not.
    assert_ordered("Alpine", "3.0.15-r9", "3.0.15-r10")


# --- PyPI (PEP 440) -----------------------------------------------------------------------

py_releases = st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 30), st.integers(0, 30))


@given(py_releases, st.integers(0, 9))
def test_pep440_phases_dev_pre_release_post(release: str, n: int) -> None:
    chain = [f"{release}.dev{n}", f"{release}a{n}", f"{release}b{n}", f"{release}rc{n}"]
    chain += [release, f"{release}.post{n}"]
    for lower, higher in itertools.pairwise(chain):
        assert_ordered("PyPI", lower, higher)


@given(py_releases, py_releases)
def test_pep440_an_epoch_wins_over_any_release(a: str, b: str) -> None:
    assert_ordered("PyPI", a, f"1!{b}")


@given(py_releases, st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
def test_pep440_local_version_is_at_or_above_its_public_fix(release: str, local: str) -> None:
    assert not below_fix("PyPI", f"{release}+{local}", release)
    assert_ordered("PyPI", f"{release}+{local}", f"{release}.post1")


def test_pep440_normalized_spellings_are_equal() -> None:
    assert not below_fix("PyPI", "1.0.0", "1.0")
    assert not below_fix("PyPI", "1.0-RC1", "1.0rc1")


# --- Ranges: many introduced/fixed, in any order ------------------------------------------

debian_versions = st.builds(lambda u, r: f"{u}-{r}", upstreams, revisions)


debian_cmp = comparator(DebianVersion)


@given(st.lists(debian_versions, min_size=2, max_size=12, unique=True), st.data())
def test_ranges_with_several_introduced_match_the_interval_model(
    versions: list[str], data: st.DataObject
) -> None:
    ordered = dedupe_equal(sorted(versions, key=functools.cmp_to_key(debian_cmp)))
    # Alternate introduced/fixed over sorted versions: intervals [v0, v1), [v2, v3), ...
    events = [{"introduced" if i % 2 == 0 else "fixed": v} for i, v in enumerate(ordered)]
    shuffled = data.draw(st.permutations(events))  # the record's order must not matter
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": shuffled}]}
    for index, version in enumerate(ordered):
        expected_in = index % 2 == 0  # at an introduced: in; at a fix: out
        fixed = affects("Debian", version, entry)
        assert (fixed is not None) == expected_in, (version, events)
        if expected_in:
            assert fixed == (ordered[index + 1] if index + 1 < len(ordered) else "")


def dedupe_equal(ordered: list[str]) -> list[str]:
    """Drop spellings equal to their predecessor ("1.0-1" and "1.00-1")."""
    kept = ordered[:1]
    for version in ordered[1:]:
        if debian_cmp(kept[-1], version) != 0:
            kept.append(version)
    return kept
