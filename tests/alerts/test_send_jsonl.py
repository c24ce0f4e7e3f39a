"""jsonl channels: one JSON object per alert, on one line, appended to a 0600 file or stdout."""

from __future__ import annotations

import json
import stat

from hypothesis import given
from hypothesis import strategies as st

from garrison.alerts.channel import Channel, check_channel
from garrison.alerts.render import FIELD_NAMES, Message, render
from garrison.alerts.send import deliver, jsonl_line
from tests.alerts.conftest import ANY_CHAR, HOSTILE, PLAIN


def test_each_alert_is_one_json_line_appended_to_a_0600_file(tmp_path):
    path = tmp_path / "alerts.jsonl"
    channel = check_channel("file", f"jsonl://{path}")
    deliver(channel, render(PLAIN), hostname="node-7")
    deliver(channel, render(PLAIN, folded=2), hostname="node-7")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first, second = (json.loads(line) for line in path.read_text().splitlines())
    assert list(first) == ["title", "summary", *FIELD_NAMES]
    assert first["title"] == render(PLAIN).title
    assert first["summary"] is False
    assert first["container"] == "web-1"
    assert second["summary"] is True


def test_an_existing_file_keeps_its_lines_and_mode(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"earlier": true}\n')
    path.chmod(0o640)
    deliver(Channel("file", f"jsonl://{path}"), render(PLAIN), hostname="node-7")
    lines = path.read_text().splitlines()
    assert lines[0] == '{"earlier": true}'
    assert len(lines) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_hostile_audit_is_exactly_one_line(tmp_path):
    path = tmp_path / "alerts.jsonl"
    message = render(HOSTILE)
    deliver(Channel("file", f"jsonl://{path}"), message, hostname="node-7")
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    [line] = text.splitlines()  # str.splitlines also breaks at U+2028, U+2029, U+0085, \x1c...
    record = json.loads(line)
    assert record["command"] == message.fields["command"]
    assert record["title"] == message.title


def test_stdout_channel_writes_the_line_there(capsys):
    deliver(Channel("out", "jsonl://-"), render(PLAIN), hostname="node-7")
    out = capsys.readouterr().out
    assert out.endswith("\n")
    assert json.loads(out)["image"] == "nginx:1.25"


def test_non_ascii_is_written_as_utf8_not_escaped():
    message = Message(title="東京 ☕", body="", fields={"msg": "naïve"})
    line = jsonl_line(message)
    assert "東京 ☕".encode() in line
    assert json.loads(line) == {"title": "東京 ☕", "summary": False, "msg": "naïve"}


@given(st.text(ANY_CHAR), st.dictionaries(st.sampled_from(FIELD_NAMES), st.text(ANY_CHAR)))
def test_even_a_hand_built_message_makes_one_line(title, fields):
    line = jsonl_line(Message(title=title, body="", fields=fields)).decode()
    assert line.endswith("\n")
    assert len(line.splitlines()) == 1
    assert json.loads(line)["title"] == title
