"""check_channel(): a channel's name and URL are checked before anything is sent, and a refusal
names the field at fault without ever showing the URL's secrets."""

from __future__ import annotations

import logging

import pytest

from garrison.alerts.channel import (
    Channel,
    SyslogTarget,
    check_channel,
    jsonl_path,
    kind_of,
    syslog_target,
)
from garrison.errors import InvalidInput

SECRET = "TopS3cretPassw0rd"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("syslog://127.0.0.1:514", "syslog"),
        ("SYSLOG+TCP://127.0.0.1:514", "syslog"),
        ("syslog+unix:///dev/log", "syslog"),
        ("jsonl:///var/log/g.jsonl", "jsonl"),
        ("jsonl://-", "jsonl"),
        ("mailto://u:p@mail.example.test", "apprise"),
        ("slack://A/B/C", "apprise"),
        ("json://127.0.0.1/x", "apprise"),
        ("rsyslog://127.0.0.1", "apprise"),
        ("nonsense", "apprise"),
    ],
)
def test_kind_follows_the_scheme(url, kind):
    assert kind_of(url) == kind
    assert Channel("c", url).kind == kind


@pytest.mark.parametrize(
    "url",
    [
        "syslog://127.0.0.1:514",
        "syslog://loghost.example.test:65535",
        "syslog+tcp://[::1]:6514",
        "syslog+unix:///dev/log",
        "jsonl:///var/log/garrison/alerts.jsonl",
        "jsonl://-",
        f"mailto://user:{SECRET}@127.0.0.1:2525?from=g@example.test&to=s@example.test&mode=insecure",
        "mailtos://user:pass@smtp.example.test?to=s@example.test",
        "json://127.0.0.1:8080/hook",
        "jsons://hooks.example.test/in?token=abc",
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#general",
        "discord://1234567890/ABCDEFGHIJKLMNOP",
    ],
)
def test_good_urls_are_accepted(url):
    assert check_channel("ops.alerts-1", url) == Channel("ops.alerts-1", url)


def test_syslog_and_jsonl_targets_are_parsed():
    assert syslog_target("syslog://127.0.0.1:514") == SyslogTarget("udp", "127.0.0.1", 514)
    assert syslog_target("syslog+tcp://[::1]:6514") == SyslogTarget("tcp", "::1", 6514)
    assert syslog_target("syslog+unix:///dev/log") == SyslogTarget("unix", path="/dev/log")
    assert jsonl_path("jsonl:///var/log/a.jsonl") == "/var/log/a.jsonl"
    assert jsonl_path("jsonl://-") == "-"


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "-leading-dash", ".hidden", "has space", "sémaphore", "a/b", "x\n"]
)
def test_bad_names_are_refused_naming_the_field(name):
    with pytest.raises(InvalidInput, match=r"^channel name "):
        check_channel(name, "syslog://127.0.0.1:514")


def test_a_64_character_name_is_accepted():
    assert check_channel("a" * 64, "jsonl://-").name == "a" * 64


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "is empty"),
        ("no-scheme-here", "no scheme"),
        (f"mailto://user:{SECRET}@127.0.0.1 ?to=a@example.test", "space or a control"),
        (f"json://u:{SECRET}@127.0.0.1/x\r\nX: y", "space or a control"),
        ("syslog://127.0.0.1", "HOST:PORT"),
        ("syslog://127.0.0.1:0", "HOST:PORT"),
        ("syslog://127.0.0.1:70000", "HOST:PORT"),
        ("syslog://127.0.0.1:http", "HOST:PORT"),
        ("syslog://:514", "HOST:PORT"),
        ("syslog://127.0.0.1:514/path", "no path"),
        (f"syslog+tcp://user:{SECRET}@127.0.0.1:514", "no user"),
        ("syslog+tcp://[::1:514", "malformed"),
        ("syslog+unix://dev/log", "ABSOLUTE/PATH"),
        ("syslog+unix:///", "ABSOLUTE/PATH"),
        ("jsonl://relative/path", "ABSOLUTE/PATH"),
        ("jsonl://", "ABSOLUTE/PATH"),
        ("jsonl:///tmp/a.jsonl?x=1", "no query"),
        ("slack://bad!/x/y", "refused by apprise"),
        (f"foo://user:{SECRET}@example.test/x", "refused by apprise"),
        (f"mailto://user:{SECRET}@/", "refused by apprise"),
        (f"slack://T1JJ3T3L2/{SECRET}!/x", "refused by apprise"),
        ("x" * 3000 + "://", "longer than 2048"),
    ],
)
def test_bad_urls_are_refused_naming_the_field_without_the_secret(url, why, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InvalidInput) as refused:
        check_channel("ops", url)
    message = str(refused.value)
    assert message.startswith("channel URL")
    assert why in message
    assert "\n" not in message
    assert SECRET not in message
    assert SECRET not in caplog.text  # apprise's own lines about the URL are scrubbed too


def test_channel_repr_hides_the_secret():
    channel = Channel("mail", f"mailto://user:{SECRET}@mail.example.test")
    assert SECRET not in repr(channel)
    assert "mailto://user:***@mail.example.test" in repr(channel)
