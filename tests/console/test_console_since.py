"""``--since`` accepts what users type: a duration back from now or a time."""

from __future__ import annotations

import pytest

from garrison.audit.query import AuditFilter, parse_since
from garrison.errors import InvalidInput

NOW = 1_700_000_000.0


def test_durations_count_back_from_now():
    assert parse_since("30s", NOW) == NOW - 30
    assert parse_since("10m", NOW) == NOW - 600
    assert parse_since("2h", NOW) == NOW - 7200
    assert parse_since("1.5d", NOW) == NOW - 1.5 * 86400
    assert parse_since("1w", NOW) == NOW - 7 * 86400


def test_times_are_utc_unless_they_say_otherwise():
    assert parse_since("2023-11-14T22:13:20Z", NOW) == NOW
    assert parse_since("2023-11-14T22:13:20", NOW) == NOW
    assert parse_since("2023-11-14T23:13:20+01:00", NOW) == NOW


def test_anything_else_is_one_clear_error():
    with pytest.raises(InvalidInput, match="--since 'yesterday'"):
        parse_since("yesterday", NOW)


def test_a_negative_limit_is_refused():
    with pytest.raises(InvalidInput):
        AuditFilter(limit=-1)
