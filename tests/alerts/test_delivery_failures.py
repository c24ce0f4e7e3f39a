"""A channel that does not take the alert raises DeliveryFailed, soon, with a reason that names
the channel without its secrets; neither the reason nor apprise's log lines carry them."""

from __future__ import annotations

import logging
import time

import pytest

from garrison.alerts.channel import Channel
from garrison.alerts.render import render
from garrison.alerts.send import deliver
from garrison.errors import DeliveryFailed, GarrisonError
from tests.alerts import receivers
from tests.alerts.conftest import PLAIN

SECRET = "Xy7SuperSecretToken9"
TIMEOUT = 2.0
# Far above TIMEOUT: this only proves the call ends, not how fast (a loaded machine stalls).
ENDS_WITHIN = 30.0


def _fails(url: str, caplog: pytest.LogCaptureFixture) -> str:
    """Deliver to ``url``: the DeliveryFailed reason, after checking nothing leaked."""
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as failed:
        deliver(Channel("c", url), render(PLAIN), hostname="node-7", timeout=TIMEOUT)
    assert time.monotonic() - started < ENDS_WITHIN
    reason = str(failed.value)
    assert SECRET not in reason
    assert "\n" not in reason
    assert SECRET not in caplog.text
    assert failed.value.__cause__ is None or SECRET not in str(failed.value.__cause__)
    return reason


def test_delivery_failed_is_a_garrison_error():
    assert issubclass(DeliveryFailed, GarrisonError)


def test_json_to_a_port_with_nothing_listening(caplog):
    port = receivers.dead_port()
    reason = _fails(f"json://user:{SECRET}@127.0.0.1:{port}/in?token={SECRET}", caplog)
    assert reason.startswith(f"json://user:***@127.0.0.1:{port}/in?token=***: ")
    assert "Connection error" in reason


def test_json_to_a_server_that_never_answers(caplog):
    with receivers.silent_server() as port:
        reason = _fails(f"json://127.0.0.1:{port}/in?token={SECRET}", caplog)
    assert reason.startswith(f"json://127.0.0.1:{port}/in?token=***: ")


def test_json_to_a_server_answering_500(failing_webhook, caplog):
    reason = _fails(f"json://127.0.0.1:{failing_webhook.port}/in?token={SECRET}", caplog)
    assert "500" in reason
    assert len(failing_webhook.posts) == 1


def test_email_to_a_port_with_nothing_listening(caplog):
    port = receivers.dead_port()
    url = f"mailto://user:{SECRET}@127.0.0.1:{port}?from=g@example.test&to=s@example.test"
    reason = _fails(url, caplog)
    assert reason.startswith(f"mailto://user:***@127.0.0.1:{port}?")


def test_email_to_a_server_that_never_greets(caplog):
    with receivers.silent_server() as port:
        url = f"mailto://user:{SECRET}@127.0.0.1:{port}?from=g@example.test&to=s@example.test"
        _fails(url, caplog)


def test_email_with_a_wrong_password_is_refused(mailbox, caplog):
    url = (
        f"mailto://{receivers.SMTP_USER}:{SECRET}@127.0.0.1:{mailbox.port}"
        "?from=g@example.test&to=s@example.test&mode=insecure"
    )
    _fails(url, caplog)
    assert mailbox.mails == []
    assert mailbox.logins == [(receivers.SMTP_USER, SECRET)]  # it did try, with that password


def test_slack_through_a_dead_proxy_fails_without_showing_tokens(monkeypatch, caplog):
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{receivers.dead_port()}")
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{receivers.dead_port()}")
    reason = _fails(f"slack://T1JJ3T3L2/A1BRTD4JD/{SECRET}/#security", caplog)
    assert reason.startswith("slack://T1JJ***/A1BR***/Xy7S***/#security: ")


def test_an_url_apprise_refuses_fails_delivery(caplog):
    reason = _fails(f"nosuchservice://user:{SECRET}@example.test/", caplog)
    assert "nosuchservice://user:***@example.test/" in reason


def test_jsonl_into_a_missing_directory_fails(tmp_path):
    channel = Channel("j", f"jsonl://{tmp_path}/missing/alerts.jsonl")
    with pytest.raises(DeliveryFailed, match="No such file or directory"):
        deliver(channel, render(PLAIN), hostname="node-7")


def test_successful_sends_log_no_secret_either(webhook, caplog):
    caplog.set_level(logging.DEBUG)
    url = f"json://user:{SECRET}@127.0.0.1:{webhook.port}/in?token={SECRET}"
    deliver(Channel("c", url), render(PLAIN), hostname="node-7", timeout=5)
    assert len(webhook.posts) == 1
    assert SECRET not in caplog.text
    assert "urllib3" in caplog.text or "apprise" in caplog.text  # the lines were there
