"""redacted(): what Garrison shows of a channel URL. Its secrets never appear; the rest does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from garrison.alerts._redact import secrets_in
from garrison.alerts.channel import redacted

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#general"


def test_mailto_password_is_hidden_and_host_port_query_stay():
    url = "mailto://user:S3cretPassw0rd@127.0.0.1:2525?from=a@example.test&to=b@example.test"
    assert redacted(url) == "mailto://user:***@127.0.0.1:2525?from=a@example.test&to=b@example.test"


def test_slack_tokens_show_only_their_first_four_characters():
    shown = redacted(SLACK)
    assert shown == "slack://T1JJ***/A1BR***/TIia***/#general"
    for token in ("T1JJ3T3L2", "A1BRTD4JD", "TIiajkdnlazkcOXrIdevi7"):
        assert token not in shown


def test_json_token_query_value_is_hidden():
    url = "json://127.0.0.1:8080/hook?token=abc123secret&format=text"
    assert redacted(url) == "json://127.0.0.1:8080/hook?token=***&format=text"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("API_Key", "k3y-value-1"),
        ("apikey", "k3y-value-2"),
        ("Signature", "sig-value-3"),
        ("sig", "sig-value-4"),
        ("+Authorization", "Bearer%20abcdefgh"),
        ("pass", "hunter2hunter2"),
        ("webhook_url", "https%3A%2F%2Fexample.test%2Fx"),
        ("client_secret", "s3cr3t-value"),
    ],
)
def test_secret_looking_query_names_hide_their_values(name, value):
    shown = redacted(f"jsons://alerts.example.test/in?{name}={value}&to=ops")
    assert shown == f"jsons://alerts.example.test/in?{name}=***&to=ops"


@pytest.mark.parametrize(
    "url",
    [
        "syslog://loghost.example.test:514",
        "syslog://127.0.0.1:5514",
        "syslog+tcp://[::1]:6514",
        "syslog+unix:///dev/log",
        "syslog+unix:///run/systemd/journal/a-very-long-socket-name",
        "jsonl:///var/log/garrison/alerts-of-the-whole-cluster.jsonl",
        "jsonl://-",
    ],
)
def test_syslog_and_jsonl_urls_are_unchanged(url):
    assert redacted(url) == url


def test_path_secret_services_hide_long_segments_but_keep_channels():
    assert redacted("discord://1234567890/ABCDEFGHIJKLMNOP") == "discord://1234***/ABCD***"
    assert (
        redacted("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/%23security-alerts/@oncall")
        == "slack://T1JJ***/A1BR***/TIia***/%23security-alerts/@oncall"
    )
    assert redacted("pagerduty://integrationkey123@apikey123456/garrison") == (
        "pagerduty://inte***@apik***/garrison"
    )


def test_short_segments_and_real_hostnames_stay_visible():
    assert redacted("json://127.0.0.1:9000/alerts") == "json://127.0.0.1:9000/alerts"
    assert redacted("jsons://hooks.example.test/in/x") == "jsons://hooks.example.test/in/x"
    assert redacted("json://localhost:80/a") == "json://localhost:80/a"


@pytest.mark.parametrize(
    "odd",
    [
        "",
        "://",
        "no scheme at all",
        "x://[::1",
        "mailto://a:b@[",
        "\x00\n\u2028",
        "a" * 5000,
        "http://%zz:%zz@%zz/%zz?%zz=%zz#%zz",
        "slack://#",
        "json://@/?&&==#/",
    ],
)
def test_odd_input_never_raises(odd):
    assert isinstance(redacted(odd), str)


def test_secrets_in_lists_written_and_decoded_forms_longest_first():
    found = dict(secrets_in("mailto://user:p%40ssw0rd-long@mail.example.test"))
    assert found == {"p%40ssw0rd-long": "***", "p@ssw0rd-long": "***"}
    assert secrets_in("syslog://127.0.0.1:514") == []


@given(st.text())
def test_any_text_is_redacted_without_raising(text):
    assert isinstance(redacted(text), str)


_SECRET = st.text(
    alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=9, max_size=40
)


@given(password=_SECRET, token=_SECRET)
def test_generated_passwords_and_tokens_never_show(password, token):
    for url in (
        f"mailto://user:{password}@mail.example.test:587?to=sec@example.test",
        f"json://127.0.0.1:8080/x?token={token}",
        f"slack://T1JJ3T3L2/A1BRTD4JD/{token}/#alerts",
        f"msteams://{token}/{password}/",
    ):
        shown = redacted(url)
        assert password not in shown
        assert token not in shown
