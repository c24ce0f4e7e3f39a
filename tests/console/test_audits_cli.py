"""``garrison audits list|export|prune`` as an operator runs them: the real command on a real
SQLite data directory."""

from __future__ import annotations

import csv
import io
import json
import stat
import subprocess
import time
from pathlib import Path

import pytest

from garrison.audit.query import AuditFilter
from garrison.audit.record import Audit
from garrison.store import SQLiteStore
from garrison.store.base import ChannelRecord
from tests.cli_run import GARRISON, assert_refused_in_one_line, garrison, private_dir

HOSTILE = "=cmd|' /C calc'!A0"
DAY = 86400.0


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return private_dir(tmp_path / "data")


def stored(data_dir: Path, *audits: Audit) -> list[Audit]:
    store = SQLiteStore.in_dir(data_dir)
    try:
        return [store.add_audits([a])[0] for a in audits]
    finally:
        store.close()


def all_audits(data_dir: Path) -> list[Audit]:
    store = SQLiteStore.in_dir(data_dir)
    try:
        return store.list_audits(AuditFilter(limit=0))
    finally:
        store.close()


def audit(when: float, msg: str, **fields: str) -> Audit:
    return Audit(when, fields.pop("hostname", "node-1"), "processes", "unexpectedProcess",
                 "alert", msg, **fields)  # fmt: skip


def operator_audits(now: float) -> list[Audit]:
    return [
        audit(now - 5 * DAY, "curl ran", command="curl http://x/100%_done", ruleName="r1"),
        audit(now - 4 * DAY, "wget ran", command="wget -q", hostname="node-2"),
        audit(now - 3 * DAY, "sh ran", command=HOSTILE, ruleName="r1"),
        audit(now - 2 * DAY, "CURL again", command="curl -I", ruleName="r2"),
    ]


def test_list_filters_by_search_rule_host_until_and_pages(data_dir: Path) -> None:
    now = time.time()
    stored(data_dir, *operator_audits(now))

    def msgs(*options: str) -> list[str]:
        ran = garrison("audits", "list", "--json", "--data-dir", data_dir, *options)
        assert ran.code == 0, ran
        return [a["msg"] for a in json.loads(ran.out)]

    assert msgs("--search", "Curl") == ["CURL again", "curl ran"]
    assert msgs("--search", "100%_", "--rule", "r1") == ["curl ran"]
    assert msgs("--host", "node-2", "--attack-type", "unexpectedProcess") == ["wget ran"]
    assert msgs("--until", "3.5d", "--since", "4.5d") == ["wget ran"]
    assert msgs("--limit", "2", "--offset", "1") == ["sh ran", "wget ran"]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--until", "someday"], "--until 'someday'"),
        (["--offset", "-1"], "offset must be 0 to"),
        (["--since", "1d", "--until", "2d"], "--until must be later than --since"),
    ],
)
def test_a_bad_filter_is_refused_in_one_line(
    data_dir: Path, options: list[str], reason: str
) -> None:
    ran = garrison("audits", "list", "--data-dir", data_dir, *options)
    assert_refused_in_one_line(ran, reason)


def test_export_to_standard_output_is_one_to_json_per_line(data_dir: Path) -> None:
    stored(data_dir, *operator_audits(time.time()))
    ran = garrison("audits", "export", "--data-dir", data_dir)
    assert ran.code == 0, ran
    lines = [json.loads(line) for line in ran.out.splitlines()]
    assert lines == [a.to_json() for a in all_audits(data_dir)]


def test_export_to_a_csv_file_is_owner_only_parses_back_and_is_inert(data_dir: Path) -> None:
    stored(data_dir, *operator_audits(time.time()))
    target = data_dir.parent / "audits.csv"
    ran = garrison("audits", "export", "--format", "csv", "--output", target,
                   "--rule", "r1", "--data-dir", data_dir)  # fmt: skip
    assert ran.code == 0, ran
    assert "2 audits written to" in ran.out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = list(csv.DictReader(io.StringIO(target.read_text(), newline="")))
    expected = [a for a in all_audits(data_dir) if a.ruleName == "r1"]
    assert [r["id"] for r in rows] == [str(a.id) for a in expected]
    assert [r["msg"] for r in rows] == ["sh ran", "curl ran"]
    assert rows[0]["command"] == "'" + HOSTILE, "a spreadsheet reads it as text"
    assert rows[1]["command"] == "curl http://x/100%_done"


def test_an_export_in_an_unknown_format_is_refused_and_writes_no_file(data_dir: Path) -> None:
    target = data_dir.parent / "audits.xml"
    ran = garrison("audits", "export", "--format", "xml", "-o", target, "--data-dir", data_dir)
    assert_refused_in_one_line(ran, "--format must be jsonl or csv, not 'xml'")
    assert list(data_dir.parent.iterdir()) == [data_dir]


def test_an_export_piped_to_a_reader_that_leaves_stops_quietly(data_dir: Path) -> None:
    now = time.time()
    stored(data_dir, *[audit(now - n, f"audit {n} " + "x" * 200) for n in range(2000)])
    command = [str(GARRISON), "audits", "export", "--data-dir", str(data_dir)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        first = json.loads(child.stdout.readline())
        child.stdout.close()  # as `| head -1` does
        err = child.stderr.read().decode()
        assert child.wait(timeout=60) == 1
    assert first["msg"].startswith("audit 0 ")
    assert err == ""


def test_prune_deletes_old_audits_but_not_those_still_owed_to_a_channel(data_dir: Path) -> None:
    now = time.time()
    stored(data_dir, audit(now - 40 * DAY, "old, sent"))
    store = SQLiteStore.in_dir(data_dir)
    store.add_channel(ChannelRecord("mail", "mailto://u:p@127.0.0.1:2525", now))
    store.close()
    stored(data_dir, audit(now - 35 * DAY, "old, pending"), audit(now - DAY, "recent"))
    ran = garrison("audits", "prune", "--older-than", "30d", "--data-dir", data_dir)
    assert ran.code == 0, ran
    assert ran.out.startswith("1 audits deleted (last seen before "), ran.out
    assert sorted(a.msg for a in all_audits(data_dir)) == ["old, pending", "recent"]


def test_prune_keeps_the_newest_and_takes_its_defaults_from_the_environment(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    stored(data_dir, *[audit(now - n * 60, f"m{n}") for n in (4, 3, 2, 1)])
    monkeypatch.setenv("GARRISON_AUDIT_MAX_COUNT", "2")
    ran = garrison("audits", "prune", "--json", "--data-dir", data_dir)
    assert ran.code == 0, ran
    report = json.loads(ran.out)
    assert (report["deleted"], report["keep"]) == (2, 2)
    assert [a.msg for a in all_audits(data_dir)] == ["m1", "m2"]


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (["--older-than", "forever"], "--older-than: not a duration: 'forever'"),
        (["--older-than", "0"], "--older-than: a duration must be positive"),
        (["--keep", "99999999999999999999"], "keep must be 0 (no cap) to 1,000,000,000,000"),
    ],
)
def test_prune_refuses_a_bad_rule_in_one_line_and_deletes_nothing(
    data_dir: Path, options: list[str], reason: str
) -> None:
    stored(data_dir, audit(1.0, "from 1970"), audit(time.time(), "now"))
    ran = garrison("audits", "prune", "--data-dir", data_dir, *options)
    assert_refused_in_one_line(ran, reason)
    assert len(all_audits(data_dir)) == 2
