"""Audits forwarded for real: a violation in a container reaches a webhook receiver on
loopback (apprise's ``json://``), through the outbox in the store — and when the receiver is
down, the defender restarted meanwhile, it arrives once the receiver is back, exactly once."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
    put_rules(defender, deny_nc("alert-*"))
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="alert-hook"))
    deb.exec_run(["/usr/bin/nc", "-h"])

    [body] = wait_for("the alert at the receiver", lambda: receiver.about("alert-hook"))
    text = f"{body.get('title')}\n{body.get('message')}"
    for expected in ("alert-hook", DEBIAN, "no netcat", "prevent", "/usr/bin/nc"):
        assert expected in text, (expected, text)
    [sent] = [d for d in outbox(defender) if d["channel"] == "hook"]
    assert (sent["state"], sent["attempts"], sent["error"]) == ("sent", 1, "")


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
