"""The Prometheus endpoint of ``garrison run --metrics-address``, scraped for real: its
figures match what happened (a prevented exec, a watched container, the outbox)."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_metrics_match_what_happened(start_defender: Start, run_container) -> None:
    port = free_port()
    defender = start_defender(learning="1h", args=["--metrics-address", f"127.0.0.1:{port}"])
    dead = f"json://127.0.0.1:{free_port()}/nobody"  # nothing listens: the alert waits
    done = garrison("alerts", "channels", "add", "hook", dead, "--data-dir", str(defender.data_dir))
    assert done.returncode == 0, done.stderr
    put_rules(defender, deny_nc("metrics-*"))
    deb = watched(defender, run_container(DEBIAN, ["sleep", "3600"], name="metrics-box"))
    for _ in range(3):
        deb.exec_run(["/usr/bin/nc", "-h"])
    wait_audits(defender, "the prevent audit", container=deb.id, effect="prevent")

    def settled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        found = scrape(port)
        audited = found.get(("garrison_audits_total", (("effect", "prevent"),
                                                       ("type", "processes"))))  # fmt: skip
        verdicts = found.get(("garrison_verdicts_total", ()), 0)
        hook_down = found.get(("garrison_alert_channel_up", (("channel", "hook"),))) == 0
        # the status reports lag
        return found if audited == 3 and verdicts >= 3 and hook_down else None

    found = wait_for("3 prevented execs and their verdicts in the metrics", settled)
    assert found[("garrison_store_up", ())] == 1
    assert found[("garrison_containers_watched", ())] == 1
    assert found[("garrison_alert_deliveries", (("channel", "hook"), ("state", "pending")))] == 1
    assert ("garrison_sensor_events_total", (("sensor", "exec"),)) in found
    assert found[("garrison_models", (("state", "learning"),))] == 1
    assert found[("garrison_pending_blocks", ())] == 0
    # each prevented exec waited for its verdict: counted in the latency histogram
    waited = found[("garrison_verdict_latency_seconds_count", (("kind", "exec"),))]
    slowest = ("garrison_verdict_latency_seconds_bucket", (("kind", "exec"), ("le", "+Inf")))
    assert waited >= 3
    assert found[slowest] == waited
    assert found[("garrison_alert_failures_total", (("channel", "hook"),))] >= 1
    assert found[("garrison_alert_sent_total", (("channel", "hook"),))] == 0
