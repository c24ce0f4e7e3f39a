"""Audits forwarded for real: a violation in a container reaches a webhook receiver on
loopback (apprise's ``json://``) and an SMTP server (aiosmtpd), through the outbox in the
store — when the receiver is down and the defender restarted meanwhile, it arrives once the
receiver is back, exactly once; a hostile command line arrives inert; a thousand identical
violations are one alert and one summary."""

from __future__ import annotations

import email
import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.alerts import receivers
from tests.defender.conftest import DefenderProcess
from tests.defender.enforcement_support import (
    DEBIAN,
    deny_nc,
    garrison,
    put_rules,
    wait_audits,
    watched,
)
from tests.support import wait_for

pytestmark = pytest.mark.engine

Start = Callable[..., DefenderProcess]


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body posted to it; stopped and
    started again on the same port."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        bodies = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                bodies.append(json.loads(self.rfile.read(size)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/garrison"

    def about(self, text: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies if text in json.dumps(b)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    try:
        yield made
    finally:
        made.stop()


def add_channel(defender: DefenderProcess, name: str, url: str) -> None:
    done = garrison("alerts", "channels", "add", name, url, "--data-dir", str(defender.data_dir))
    assert done.returncode == 0, done.stderr


def outbox(defender: DefenderProcess) -> list[dict[str, Any]]:
    done = garrison("alerts", "outbox", "--json", "--data-dir", str(defender.data_dir))
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def test_a_violation_reaches_the_webhook_naming_container_image_rule_effect_and_message(
    start_defender: Start, run_container, receiver: Receiver
) -> None:
    receiver.start()
    defender = start_defender(learning="1h")
    add_channel(defender, "hook", receiver.url)
    shop = "profiles: [{name: shop, channels: [hook], scope: [{labels: ['team:shop']}]}]"
    assert garrison_input(defender, shop).returncode == 0
    put_rules(defender, deny_nc("alert-*"))
    labels = {"team": "shop"}
    deb = run_container(DEBIAN, ["sleep", "3600"], name="alert-hook", labels=labels)
    other = run_container(DEBIAN, ["sleep", "3600"], name="alert-other")
    for container in (watched(defender, deb), watched(defender, other)):
        container.exec_run(["/usr/bin/nc", "-h"])

    [body] = wait_for("the alert at the receiver", lambda: receiver.about("alert-hook"))
    text = f"{body.get('title')}\n{body.get('message')}"
    for expected in ("alert-hook", DEBIAN, "no netcat", "prevent", "/usr/bin/nc"):
        assert expected in text, (expected, text)
    sent, skipped = wait_for("both audits in the outbox", lambda: hook_deliveries(defender, 2))
    assert (sent["state"], sent["attempts"], sent["error"]) == ("sent", 1, "")
    assert sent["audit"]["containerName"] == "alert-hook"
    assert sent["audit"]["labels"]["team"] == "shop"  # with the image's own labels
    assert (skipped["state"], skipped["audit"]["containerName"]) == ("skipped", "alert-other")
    assert "team" not in skipped["audit"]["labels"]  # outside the label scope: not sent
    assert not receiver.about("alert-other")


def hook_deliveries(defender: DefenderProcess, count: int) -> list[dict[str, Any]] | None:
    """The hook channel's deliveries, the sent one first, once there are ``count``."""
    found = [d for d in outbox(defender) if d["channel"] == "hook"]
    if len(found) < count or any(d["state"] == "pending" for d in found):
        return None
    return sorted(found, key=lambda d: d["state"] != "sent")


def test_an_alert_raised_while_the_receiver_is_down_arrives_once_after_a_restart(
    start_defender: Start, run_container, receiver: Receiver
) -> None:
    defender = start_defender(learning="1h")
    add_channel(defender, "hook", receiver.url)  # nothing listens there yet
    put_rules(defender, deny_nc("alert-*"))
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="alert-down"))
    deb.exec_run(["/usr/bin/nc", "-h"])
    wait_audits(defender, "the prevent audit", container=deb.id, effect="prevent")

    def failed_once() -> bool:
        return any(d["attempts"] >= 1 and d["state"] == "pending" for d in outbox(defender))

    wait_for("a failed attempt in the outbox", failed_once)
    assert outbox(defender)[0]["error"], "a failed attempt says why"
    defender.stop()
    defender.start()
    receiver.start()

    wait_for("the alert at the receiver", lambda: receiver.about("alert-down"), timeout=90)
    wait_for("the delivery marked sent", lambda: outbox(defender)[0]["state"] == "sent")
    defender.stop()  # nothing more can be sent: the count is final
    assert len(receiver.about("alert-down")) == 1


def test_an_email_for_a_violation_with_a_hostile_command_line_arrives_inert(
    start_defender: Start, run_container
) -> None:
    """The command line a container chose tries a header break (a Bcc), a Slack mention and a
    syslog frame break: the mail has one recipient and the text shows as escapes."""
    with receivers.smtp_server() as box:
        defender = start_defender(learning="1h")
        url = (
            f"mailto://{receivers.SMTP_USER}:{receivers.SMTP_PASSWORD}@127.0.0.1:{box.port}"
            "?from=garrison@example.test&to=sec@example.test&mode=insecure"
        )
        add_channel(defender, "mail", url)
        put_rules(defender, deny_nc("alert-*"))
        deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="alert-mail"))
        hostile = "-h\r\nBcc: evil@example.test\r\n<!channel>\n<13>1 - - - - - - x"
        deb.exec_run(["/usr/bin/nc", hostile])

        [mail] = wait_for("the email", lambda: box.mails)
    assert mail.rcpt_tos == ["sec@example.test"], "no recipient added by the command line"
    message = email.message_from_bytes(mail.content)
    assert "Bcc" not in message
    assert "evil@example.test" not in message.get("To", "")
    assert "alert-mail" in message["Subject"]
    assert "prevent" in message["Subject"]
    body = message.get_payload(decode=True).decode()
    for expected in ("alert-mail", DEBIAN, "no netcat", "/usr/bin/nc", "\\r\\nBcc: evil"):
        assert expected in body, (expected, body)
    command = next(line for line in body.splitlines() if line.startswith("command: "))
    assert "\r" not in command
    assert "<13>1" in command


def test_a_thousand_identical_violations_are_one_audit_one_alert_and_one_summary(
    start_defender: Start, run_container, receiver: Receiver
) -> None:
    receiver.start()
    defender = start_defender(learning="1h")
    add_channel(defender, "hook", receiver.url)
    profiles = "profiles: [{name: all, channels: [hook], aggregation: 2s}]"
    done = garrison_input(defender, profiles)
    assert done.returncode == 0, done.stderr
    put_rules(defender, deny_nc("alert-*"))
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="alert-many"))
    storm = "for i in $(seq 1 1000); do /usr/bin/nc -h 2>/dev/null; done; true"
    deb.exec_run(["bash", "-c", storm])

    def counted() -> list[Any]:
        return [a for a in wait_audits(defender, "the audit", container=deb.id) if a.count == 1000]

    [audit] = wait_for("one audit counting 1,000", counted)
    wait_for("the summary", lambda: len(receiver.about("alert-many")) == 2)
    settle_for(5.0)  # two more periods: nothing more comes
    bodies = receiver.about("alert-many")
    assert len(bodies) == 2, bodies
    first, summary = sorted(bodies, key=lambda b: "more" in str(b.get("title")))
    assert "more" not in str(first["title"])
    assert "more like it" in str(summary["message"])
    assert "count: 1000" in str(summary["message"])
    assert audit.effect == "prevent"


def garrison_input(defender: DefenderProcess, profiles: str) -> Any:
    path = defender.data_dir.parent / "profiles.yaml"
    path.write_text(profiles)
    return garrison("alerts", "profiles", "apply", "-f", str(path),
                    "--data-dir", str(defender.data_dir))  # fmt: skip


def settle_for(seconds: float) -> None:
    time.sleep(seconds)
