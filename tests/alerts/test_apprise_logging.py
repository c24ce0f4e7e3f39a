"""Apprise's log lines pass through Garrison's scrubbing filter: URLs redacted, the channel's
secrets hidden, at every level; and importing Garrison installs nothing."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys

from garrison.alerts._apprise import scrub_urls
from garrison.alerts.channel import check_channel
from garrison.errors import InvalidInput

SECRET = "Qq9LongSecretValue"


def test_urls_in_any_text_are_redacted():
    text = f"failed: mailto://u:{SECRET}@h.example.test and json://127.0.0.1/x?token={SECRET}."
    assert scrub_urls(text) == (
        "failed: mailto://u:***@h.example.test and json://127.0.0.1/x?token=***."
    )


def test_apprise_lines_about_a_refused_url_are_scrubbed_at_every_level(caplog):
    caplog.set_level(logging.DEBUG)
    for url in (
        f"foo://user:{SECRET}@example.test/x",  # apprise: "Unparseable URL <url>" at ERROR
        f"slack://T1JJ3T3L2/{SECRET}!/x",  # apprise: "An invalid Slack (second) Token (...)"
    ):
        with contextlib.suppress(InvalidInput):
            check_channel("c", url)
    apprise_lines = [r.getMessage() for r in caplog.records if r.name == "apprise"]
    assert any("Unparseable URL foo://user:***@example.test/x" in m for m in apprise_lines)
    assert any("Token (Qq9L***)" in line for line in apprise_lines)
    assert SECRET not in caplog.text


def test_a_record_logged_by_apprise_outside_garrison_still_has_its_urls_redacted(caplog):
    check_channel("c", "jsonl://-")  # any use installs the filter; this one does not touch it
    check_channel("c", "json://127.0.0.1/x")
    caplog.set_level(logging.INFO)
    logging.getLogger("apprise").warning("raw %s", f"json://127.0.0.1/x?token={SECRET}")
    assert SECRET not in caplog.text
    assert "json://127.0.0.1/x?token=***" in caplog.text


def test_importing_garrison_alerts_touches_no_logger():
    code = (
        "import logging, garrison.alerts.send, garrison.alerts.channel\n"
        "assert not logging.getLogger('apprise').filters\n"
        "assert not logging.getLogger('urllib3.connectionpool').filters\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
