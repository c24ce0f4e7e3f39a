"""Email through apprise to a real SMTP server (aiosmtpd) on loopback, with AUTH."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

from garrison.alerts.channel import Channel, check_channel
from garrison.alerts.render import render
from garrison.alerts.send import deliver
from tests.alerts import receivers
from tests.alerts.conftest import HOSTILE, PLAIN


def mail_url(box: receivers.MailBox) -> str:
    # mode=insecure: plain SMTP, no STARTTLS (it is already mailto://'s default; mailtos://
    # would mean TLS). from= and to= set the envelope and headers.
    return (
        f"mailto://{receivers.SMTP_USER}:{receivers.SMTP_PASSWORD}@127.0.0.1:{box.port}"
        "?from=garrison@example.test&to=sec@example.test&mode=insecure"
    )


def _parsed(content: bytes) -> EmailMessage:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_email_arrives_naming_container_image_rule_effect_and_message(mailbox):
    channel = check_channel("mail", mail_url(mailbox))
    message = render(PLAIN)
    deliver(channel, message, hostname="node-7", timeout=5)
    assert mailbox.logins == [(receivers.SMTP_USER, receivers.SMTP_PASSWORD)]
    [mail] = mailbox.mails
    assert mail.mail_from == "garrison@example.test"
    assert mail.rcpt_tos == ["sec@example.test"]
    parsed = _parsed(mail.content)
    assert parsed["Subject"] == message.title
    assert parsed["To"] == "sec@example.test"
    lines = _text(parsed).splitlines()
    for expected in (
        "container: web-1",
        "image: nginx:1.25",
        "rule: Default - prevent unknown processes",
        "effect: prevent",
        "msg: /usr/bin/nc launched and is not in the model",
        "command: nc -l -p 4444",
    ):
        assert expected in lines


def test_hostile_audit_adds_no_header_and_no_recipient(mailbox):
    message = render(HOSTILE)
    deliver(Channel("mail", mail_url(mailbox)), message, hostname="node-7", timeout=5)
    [mail] = mailbox.mails
    assert mail.rcpt_tos == ["sec@example.test"]
    parsed = _parsed(mail.content)
    headers = {name.lower() for name in parsed}
    assert "bcc" not in headers
    assert not any(line.lower().startswith(b"bcc:") for line in mail.content.splitlines())
    assert parsed["Subject"] == message.title
    assert "\\r\\nBcc: evil2@example.test" in parsed["Subject"]
    body = _text(parsed)
    assert not any(line.startswith("Bcc:") for line in body.splitlines())
    assert "command: sh -c x\\r\\nBcc: evil@example.test\\r\\n" in body
    header_block = mail.content.split(b"\r\n\r\n", 1)[0]
    assert b"evil@example.test" not in header_block  # (Subject holds only evil2, encoded)
