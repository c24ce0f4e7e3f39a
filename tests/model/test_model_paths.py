from __future__ import annotations

import posixpath

from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.model.paths import MAX_DEPTH, MAX_SIBLINGS, WrittenPaths, directory_of, is_generated

# Path components as containers write them: words, numbers, hashes, temp names.
component = st.one_of(
    st.sampled_from(["var", "log", "nginx", "tmp", "cache", "run", "lib", "data", "etc", "a"]),
    st.integers(0, 10**6).map(str),
    st.text("0123456789abcdef", min_size=8, max_size=16),
    st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=10),
    st.text("abcXYZ019", min_size=6, max_size=6).map(lambda s: f"sh-thd.{s}"),
)
file_path = st.lists(component, min_size=1, max_size=9).map(lambda parts: "/" + "/".join(parts))


def learned(*paths: str) -> WrittenPaths:
    written = WrittenPaths()
    for path in paths:
        written.learn(path)
    return written


def test_a_new_file_in_a_learned_directory_is_covered():
    written = learned("/var/log/nginx/access.log")
    assert written.covers("/var/log/nginx/error.log")
    assert list(written) == ["/var/log/nginx"]


def test_a_file_in_a_new_directory_is_not_covered():
    written = learned("/var/log/nginx/access.log", "/run/nginx.pid")
    assert not written.covers("/opt/evil/x")
    assert not written.covers("/usr/bin/nc")


def test_deep_entries_cover_their_subtree_but_shallow_ones_only_their_own_files():
    written = learned("/var/lib/nginx/body", "/tmp/a", "/x")
    assert written.covers("/var/lib/nginx/new/deeper/file")
    assert not written.covers("/var/lib/other/file")
    assert written.covers("/tmp/b")
    assert not written.covers("/tmp/sub/b")
    assert written.covers("/y")
    assert not written.covers("/etc/passwd")


def test_generated_names_become_wildcards():
    assert directory_of("/var/lib/nginx/body/0000000012/f") == ("var", "lib", "nginx", "body", "*")
    assert directory_of("/tmp/tmpk3j_2xq9/out") == ("tmp", "*")
    written = learned("/proc/1234/x", "/tmp/tmpk3j_2xq9/out")
    assert written.covers("/proc/99/x")
    assert written.covers("/tmp/tmpzz81_abc/other")


def test_words_and_versions_are_not_generated_names():
    for name in ("nginx", "python3.11", "conf.d", "site-packages", "archive.backup", "tmpfiles"):
        assert not is_generated(name), name
    for name in ("1234", "deadbeef12", "sh-thd.Xa3bQ9", "tmpk3j_2xq9"):
        assert is_generated(name), name


def test_many_siblings_collapse_into_a_wildcard():
    written = learned(*(f"/srv/app/user{i}/f" for i in range(MAX_SIBLINGS + 1)))
    assert list(written) == ["/srv/app/*"]
    assert written.covers("/srv/app/someone-else/f")
    assert not written.covers("/srv/other/f")


def test_deep_directories_are_cut():
    deep = "/a/b/c/d/e/f/g/h/file"
    assert len(directory_of(deep)) == MAX_DEPTH
    assert learned(deep).covers("/a/b/c/d/e/f/other/file")


def test_paths_round_trip_through_text():
    written = learned("/var/log/nginx/a", "/tmp/tmpk3j_2xq9/out", "/x")
    assert list(WrittenPaths(list(written))) == list(written)


@settings(max_examples=200, deadline=None)
@given(st.lists(file_path, min_size=1, max_size=60))
def test_what_was_learned_stays_covered(paths):
    written = WrittenPaths()
    for i, path in enumerate(paths):
        written.learn(path)
        assert all(written.covers(p) for p in paths[: i + 1])


@settings(max_examples=200, deadline=None)
@given(st.lists(file_path, max_size=60))
def test_no_directory_keeps_more_than_the_sibling_limit(paths):
    written = learned(*paths)
    parents: dict[str, int] = {}
    for entry in written:
        parent = posixpath.dirname(entry)
        parents[parent] = parents.get(parent, 0) + 1
    assert all(n <= MAX_SIBLINGS for n in parents.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(file_path, max_size=60))
def test_no_entry_is_covered_by_another(paths):
    written = learned(*paths)
    entries = list(written)
    for entry in entries:
        others = WrittenPaths([e for e in entries if e != entry])
        assert not others.covers(entry + "/file")


@given(file_path)
def test_normalising_twice_changes_nothing(path):
    parts = directory_of(path)
    assert directory_of("/".join(("", *parts, "f"))) == parts
