"""Path patterns, port ranges and address lists, compiled once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.policy.matchers import IpSet, PathSet, PortRange, PortSet

segment = st.text(alphabet="abcxyz._-", min_size=1, max_size=6)
paths = st.lists(segment, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))


@pytest.mark.parametrize(
    ("pattern", "matching", "other"),
    [
        ("/etc", "/etc/nginx/nginx.conf", "/etcetera"),
        ("/etc/", "/etc", "/usr/etc"),
        ("/tmp/*.sh", "/tmp/run.sh", "/tmp/sub/run.sh"),
        ("/tmp/**", "/tmp/sub/run.sh", "/var/tmp/x"),
        ("/usr/**/python3", "/usr/bin/python3", "/usr/bin/python3.11"),
        ("/usr/**/python3", "/usr/local/lib/bin/python3", "/opt/python3"),
        ("/usr/bin/?c", "/usr/bin/nc", "/usr/bin/ncat"),
        ("nc", "/bin/nc", "/bin/ncdu"),
        ("xmrig*", "/tmp/xmrig-6.1", "/tmp/a-xmrig"),
        ("/", "/anything/at/all", ""),
    ],
)
def test_path_patterns(pattern: str, matching: str, other: str) -> None:
    paths_ = PathSet([pattern])
    assert paths_.matches(matching)
    assert not paths_.matches(other)


@given(paths, paths)
def test_a_plain_path_covers_itself_and_what_is_below_only(base: str, path: str) -> None:
    expected = path == base or path.startswith(base + "/")
    assert PathSet([base]).matches(path) == expected


@given(st.lists(paths, max_size=5), paths)
def test_a_set_matches_when_one_of_its_patterns_does(patterns: list[str], path: str) -> None:
    assert PathSet(patterns).matches(path) == any(PathSet([p]).matches(path) for p in patterns)


@given(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 65535))
def test_a_port_range_covers_its_bounds_inclusive(a: int, b: int, port: int) -> None:
    low, high = sorted((a, b))
    assert PortSet([f"{low}-{high}"]).matches("tcp", port) == (low <= port <= high)


@pytest.mark.parametrize("spec", ["", "http", "80-", "-80", "65536", "90-80", "sctp/80", "1.5"])
def test_a_bad_port_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="port"):
        PortRange.parse(spec)


def test_addresses_that_are_not_addresses_match_nothing() -> None:
    assert not IpSet(["0.0.0.0/0", "::/0"]).matches("")
    assert not IpSet(["0.0.0.0/0"]).matches("example.com")
    assert IpSet(["0.0.0.0/0"]).matches("203.0.113.9")
    assert not IpSet(["0.0.0.0/0"]).matches("2001:db8::1")
