"""Webhooks through apprise to a real HTTP server on loopback: apprise's json:// and its slack
plugin, unmodified, reaching a stand-in for hooks.slack.com through an HTTPS proxy."""

from __future__ import annotations

import json
from typing import Any

from garrison.alerts.channel import Channel, check_channel
from garrison.alerts.render import render, slack_safe
from garrison.alerts.send import deliver
from tests.alerts.conftest import HOSTILE, PLAIN

SLACK_TOKENS = "T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"


def _strings(value: Any) -> list[str]:
    """Every string in a JSON document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_json_webhook_payload_holds_title_and_body(webhook):
    channel = check_channel("hook", f"json://127.0.0.1:{webhook.port}/garrison/alerts")
    message = render(PLAIN)
    deliver(channel, message, hostname="node-7", timeout=5)
    [post] = webhook.posts
    assert post.path == "/garrison/alerts"
    assert post.headers["Content-Type"].startswith("application/json")
    payload = json.loads(post.body)
    assert payload["title"] == message.title
    assert payload["message"] == message.body
    assert "container: web-1" in payload["message"].split("\n")


def test_hostile_audit_reaches_a_json_webhook_one_line_per_field(webhook):
    message = render(HOSTILE)
    deliver(Channel("hook", f"json://127.0.0.1:{webhook.port}/in"), message, hostname="n")
    payload = json.loads(webhook.posts[0].body)
    assert payload["message"] == message.body
    lines = payload["message"].splitlines()  # splitlines also breaks at U+2028, U+0085...
    assert len(lines) == len(message.body.split("\n"))
    assert any(line.startswith("command: sh -c x\\r\\nBcc: evil@example.test") for line in lines)


def test_slack_receives_mentions_and_links_as_literal_text(slack_hooks):
    channel = check_channel("slack", f"slack://{SLACK_TOKENS}/#security")
    message = render(HOSTILE)
    deliver(channel, message, hostname="node-7", timeout=10)
    [post] = slack_hooks.posts
    assert post.host == "hooks.slack.com"
    assert post.path == f"/services/{SLACK_TOKENS}"
    texts = _strings(json.loads(post.body))
    assert b"<!channel>" not in post.body
    assert b"<http://evil" not in post.body
    # Exactly once escaped, as Slack needs: apprise's slack plugin does it to a text body
    # and to the title; Garrison hands both over unescaped.
    assert slack_safe(message.title) in texts
    assert slack_safe(message.body) in texts
    literal = "&lt;!channel&gt; &lt;http://evil.example.test|click&gt; &amp; co"
    assert any(literal in text for text in texts)
    assert not any("&amp;lt;" in text for text in texts)
