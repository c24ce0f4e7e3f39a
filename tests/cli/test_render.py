"""The pieces of the CLI's output for people, with plain inputs: human durations and ages,
and how a table too wide for the terminal shares its width."""

from __future__ import annotations

import pytest

from garrison.cli.render import MIN_FREE, Column, _layout, free, key
from garrison.human import ago, duration, short_id


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "-"),
        (0, "0s"),
        (0.9, "0s"),
        (30.452066659927368, "30s"),
        (60, "1m"),
        (252.7, "4m 12s"),
        (3600, "1h"),
        (3605, "1h"),  # two units at most: 1h 0m 5s reads 1h
        (3900.5, "1h 5m"),
        (90061, "1d 1h"),
        (-5, "0s"),
    ],
)
def test_a_duration_reads_in_its_two_largest_units(seconds: float | None, shown: str) -> None:
    assert duration(seconds) == shown


def test_an_age_says_ago_and_a_time_to_come_says_in() -> None:
    assert ago(1000.0, now=1012.5) == "12s ago"
    assert ago(1030.0, now=1000.0) == "in 30s"
    assert ago(None) == ago(0) == "-"


def test_a_short_id_is_twelve_characters_without_its_algorithm() -> None:
    assert short_id("sha256:5888a9cdfd23" + "c" * 52) == "5888a9cdfd23"
    assert short_id("3f2a9c41d0e7" + "a" * 52) == "3f2a9c41d0e7"
    assert short_id("") == "-"


def columns(*kinds: str) -> list[Column[object]]:
    return [free(k, str) if k.startswith("free") else key(k, str) for k in kinds]


def test_a_table_that_fits_is_left_as_it_is() -> None:
    assert _layout([10, 12, 30], columns("name", "id", "free"), room=76) == {}


def test_free_text_takes_what_the_keys_leave() -> None:
    sizes = _layout([12, 12, 7, 200], columns("name", "id", "state", "free"), room=74)
    assert sizes == {3: 74 - 12 - 12 - 7}


def test_two_free_columns_share_what_is_left() -> None:
    sizes = _layout([20, 100, 100], columns("name", "free a", "free b"), room=60)
    assert sizes == {1: 20, 2: 20}


def test_when_the_keys_do_not_fit_the_widest_folds_and_the_others_stay_whole() -> None:
    widths = [60, 12, 8, 200]  # a long image name, an id, a state, a message
    sizes = _layout(widths, columns("image", "id", "state", "free"), room=74)
    assert set(sizes) == {0, 3}  # the id and the state keep their width: not in sizes
    assert sizes[3] == MIN_FREE
    assert sizes[0] == 74 - 12 - 8 - MIN_FREE


def test_short_free_text_needs_no_more_than_it_holds() -> None:
    sizes = _layout([30, 30, 12, 1], columns("a", "b", "id", "free"), room=74)
    assert sizes == {}  # 73 columns: the free "-" needs one
