"""Fixtures for the alert tests: audits (a plain one and a hostile one) and real receivers on
loopback, each stopped at the end of its test even when the test fails."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import strategies as st

from garrison.audit.record import Audit
from tests.alerts import receivers

# Any character, lone surrogates included (st.characters() leaves them out by default): a
# path from os.readlink or os.fsdecode holds one for each byte that is not UTF-8.
ANY_CHAR = st.characters() | st.characters(categories=["Cs"])

# What a container chose: a header break for email, mentions and a link for Slack, a frame
# break for syslog, a Unicode line separator for JSON line readers, and 10 kB of padding.
HOSTILE_COMMAND = (
    "sh -c x\r\nBcc: evil@example.test\r\n\r\n"
    "<!channel> <http://evil.example.test|click> & co"
    "\n<13>1 - - - - - - injected"
    "\u2028second line\u2029\x85\x1b[31m"
    ' quote" back\\slash ]bracket ' + "A" * 10240
)

PLAIN = Audit(
    time=1764763200.25,
    hostname="node-7",
    type="processes",
    attackType="unexpectedProcess",
    effect="prevent",
    msg="/usr/bin/nc launched and is not in the model",
    containerId="3f1c9a0b7d2e4f5a6b7c8d9e0f1a2b3c",
    containerName="web-1",
    imageName="nginx:1.25",
    ruleName="Default - prevent unknown processes",
    pid=4242,
    processPath="/usr/bin/nc",
    command="nc -l -p 4444",
    user="www-data",
    count=3,
)

HOSTILE = dataclasses.replace(
    PLAIN,
    containerName="web-1\r\nBcc: evil2@example.test",
    msg="denied: " + HOSTILE_COMMAND[:200],
    command=HOSTILE_COMMAND,
)


@pytest.fixture(autouse=True)
def _direct_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback receivers are reached directly whatever proxy the machine's environment sets."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def mailbox() -> Iterator[receivers.MailBox]:
    with receivers.smtp_server() as box:
        yield box


@pytest.fixture
def webhook() -> Iterator[receivers.WebhookServer]:
    with receivers.webhook_server() as server:
        yield server


@pytest.fixture
def failing_webhook() -> Iterator[receivers.WebhookServer]:
    with receivers.webhook_server(status=500) as server:
        yield server


@pytest.fixture
def slack_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[receivers.WebhookServer]:
    """hooks.slack.com, played on loopback: apprise's slack plugin posts to that fixed host,
    so the test sends it through an HTTPS proxy that terminates TLS with a certificate made
    for hooks.slack.com, which requests is told to trust. The plugin runs unmodified."""
    cert, key = receivers.self_signed(tmp_path, "hooks.slack.com")
    with receivers.tls_proxy(cert, key) as proxy:
        for name in ("HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        yield proxy


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: a unix socket path is limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="g-alerts-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
