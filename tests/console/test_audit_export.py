"""Audit exports as plain logic and real files: CSV that parses back to the audits' fields with
formula-like cells made inert, JSON lines that parse to ``to_json()``, and a file that appears
whole, owner-only, or not at all."""

from __future__ import annotations

import csv
import io
import json
import os
import stat

import pytest

from garrison.audit import export
from garrison.audit.record import Audit
from garrison.errors import ConfigError, InvalidInput

HOSTILE = "=cmd|' /C calc'!A0"


def audits() -> list[Audit]:
    return [
        Audit(200.0, "node-1", "processes", "unexpectedProcess", "alert", "ran\r\nBcc: x",
              command=HOSTILE, ruleName="r, \"quoted\"", pid=42, id=2, count=3),
        Audit(100.0, "node-1", "network", "unexpectedListeningPort", "prevent", "été 100%",
              command="nc -l 4444", user="@root", labels={"team": "=shop", "app": "web"}, id=1),
    ]  # fmt: skip


def as_text(fmt: str, items: list[Audit]) -> str:
    return "".join(export.chunks(fmt, items))


def test_csv_parses_back_to_every_field_of_each_audit_in_order():
    rows = list(csv.reader(io.StringIO(as_text("csv", audits()), newline="")))
    assert rows[0] == list(audits()[0].to_json())
    for row, audit in zip(rows[1:], audits(), strict=True):
        expected = [export.inert_cell(v) for v in audit.to_json().values()]
        assert row == expected
    assert rows[1][rows[0].index("msg")] == "ran\r\nBcc: x", "a line break stays in its cell"
    assert rows[1][rows[0].index("pid")] == "42"


def test_labels_are_one_json_cell_in_csv():
    rows = list(csv.DictReader(io.StringIO(as_text("csv", audits()), newline="")))
    assert [json.loads(r["labels"]) for r in rows] == [{}, {"app": "web", "team": "=shop"}]


def test_a_hostile_command_comes_out_inert_in_csv():
    rows = list(csv.DictReader(io.StringIO(as_text("csv", audits()), newline="")))
    assert rows[0]["command"] == "'" + HOSTILE
    assert rows[1]["user"] == "'@root"
    assert rows[1]["command"] == "nc -l 4444"


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_that_starts_like_a_formula_gets_a_quote(start):
    assert export.inert_cell(start + "1+1") == "'" + start + "1+1"


@pytest.mark.parametrize("value", ["a=b", "1-2", "", None, 7, " =x"])
def test_other_cells_are_left_as_they_are(value):
    assert export.inert_cell(value) == ("" if value is None else str(value))


def test_json_lines_are_one_to_json_per_line():
    lines = as_text("jsonl", audits()).splitlines()
    assert [json.loads(line) for line in lines] == [a.to_json() for a in audits()]


def test_an_empty_csv_export_is_its_header():
    assert as_text("csv", []) == ",".join(export.fields()) + "\r\n"


def test_an_unknown_format_is_refused_before_anything_is_read():
    def never():
        raise AssertionError("read")
        yield

    with pytest.raises(InvalidInput, match="--format must be jsonl or csv, not 'xml'"):
        export.chunks("xml", never())


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_an_export_file_is_owner_only_whatever_the_umask(tmp_path, umask):
    target = tmp_path / "audits.csv"
    old = os.umask(umask)
    try:
        written = export.write_file(target, export.chunks("csv", audits()))
    finally:
        os.umask(old)
    assert written == 3
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes().count(b"\r\n") >= 3


def test_a_failed_export_leaves_the_old_file_whole_and_no_temporary(tmp_path):
    target = tmp_path / "audits.jsonl"
    target.write_text("before\n")

    def failing():
        yield "one\n"
        raise OSError(28, "No space left on device")

    with pytest.raises(ConfigError, match=f"cannot write {target}: No space left on device"):
        export.write_file(target, failing())
    assert target.read_text() == "before\n"
    assert os.listdir(tmp_path) == ["audits.jsonl"]


def test_a_file_that_cannot_be_made_is_one_error_naming_it(tmp_path):
    target = tmp_path / "missing" / "audits.csv"
    with pytest.raises(ConfigError, match="No such file or directory") as refused:
        export.write_file(target, iter(["x\n"]))
    assert str(target) in str(refused.value)


def test_a_non_utf8_byte_of_a_command_is_written_as_an_escape(tmp_path):
    target = tmp_path / "audits.csv"
    odd = Audit(1.0, "h", "processes", "t", "alert", "m", command="rm x\udcff")
    export.write_file(target, export.chunks("csv", [odd]))
    assert "rm x\\udcff" in target.read_text(encoding="utf-8")
