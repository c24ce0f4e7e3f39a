"""The Prometheus endpoint on its own: real HTTP on loopback, the figures from the store, a
store that cannot be read reported as such, a bad or busy address refused clearly."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from garrison.console.metrics import serve_metrics
from garrison.errors import ConfigError, StoreError
from garrison.sensors.latency import LatencyHistogram
from garrison.store import MemoryStore
from tests.store.test_store_contract import audit


def samples(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            found[f"{s.name}{{{labels}}}"] = s.value
    return found


def served(store: MemoryStore):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    return serve_metrics(store, f"127.0.0.1:{port}"), port


def test_a_scrape_reads_the_store_as_it_is_now() -> None:
    store = MemoryStore()
    server, port = served(store)
    try:
        before = samples(port)
        assert before["garrison_store_up{}"] == 1
        assert not any(k.startswith("garrison_audits_total") for k in before)
        store.add_audits([audit(count=3), audit(msg="x", effect="block")])
        store.set_status({"updatedAt": 5.0, "watching": ["a", "b"], "models": {"active": 2},
                          "sensors": {"exec": {"events": 7, "drops": 1}},
                          "enforcement": {"blocks": 1, "pending": 0,
                                          "podDeletions": {"deleted": 2, "failed": 1}},
                          "forensics": {"captured": 1, "written": 12, "dropped": 2},
                          "events": {"verdicts": 9}})  # fmt: skip
        after = samples(port)
    finally:
        server.shutdown()
        server.server_close()
    assert after["garrison_audits_total{effect=alert,type=processes}"] == 3
    assert after["garrison_audits_total{effect=block,type=processes}"] == 1
    assert after["garrison_containers_watched{}"] == 2
    assert after["garrison_models{state=active}"] == 2
    assert after["garrison_sensor_events_total{sensor=exec}"] == 7
    assert after["garrison_sensor_drops_total{sensor=exec}"] == 1
    assert after["garrison_verdicts_total{}"] == 9
    assert after["garrison_blocks_total{}"] == 1
    assert after["garrison_pod_deletions_total{outcome=deleted}"] == 2
    assert after["garrison_pod_deletions_total{outcome=failed}"] == 1
    assert after["garrison_defender_status_time_seconds{}"] == 5.0
    assert after["garrison_forensics_bundles_total{}"] == 1
    assert after["garrison_forensics_failures_total{}"] == 0
    assert after["garrison_journal_entries_total{}"] == 12
    assert after["garrison_journal_dropped_total{}"] == 2


class BrokenStore(MemoryStore):
    def audit_totals(self) -> dict[tuple[str, str], int]:
        raise StoreError("database disk image is malformed")


def test_a_store_that_cannot_be_read_is_reported_down_not_a_crash() -> None:
    server, port = served(BrokenStore())
    try:
        assert samples(port) == {"garrison_store_up{}": 0}
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("address", ["8080", "127.0.0.1:", "127.0.0.1:x", "h:0", "h:70000", ""])
def test_a_malformed_address_is_refused_with_its_text(address: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        serve_metrics(MemoryStore(), address)


def test_a_busy_port_is_refused_clearly() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"127.0.0.1:{port}"):
            serve_metrics(MemoryStore(), f"127.0.0.1:{port}")


def test_verdict_latency_and_channel_health_are_exported_from_the_status_reports() -> None:
    store = MemoryStore()
    exec_latency = LatencyHistogram()
    for ns in (40_000, 60_000, 60_000, 3_000_000):
        exec_latency.observe(ns)
    store.set_status({"updatedAt": 5.0, "verdictLatency": {
        "exec": exec_latency.snapshot(), "file": LatencyHistogram().snapshot()}})  # fmt: skip
    store.set_status({"channels": {
        "hook": {"up": True, "sent": 7, "failures": 2},
        "mail": {"up": False, "sent": 0, "failures": 3},
    }}, source="alerts")  # fmt: skip
    server, port = served(store)
    try:
        found = samples(port)
    finally:
        server.shutdown()
        server.server_close()
    bucket = "garrison_verdict_latency_seconds_bucket{kind=exec,le=%s}"
    assert found[bucket % "5e-05"] == 1
    assert found[bucket % "0.0001"] == 3
    assert found[bucket % "0.0025"] == 3
    assert found[bucket % "0.005"] == 4
    assert found[bucket % "+Inf"] == 4
    assert found["garrison_verdict_latency_seconds_count{kind=exec}"] == 4
    assert abs(found["garrison_verdict_latency_seconds_sum{kind=exec}"] - 0.00316) < 1e-9
    assert found["garrison_verdict_latency_seconds_count{kind=file}"] == 0
    assert found["garrison_alert_sent_total{channel=hook}"] == 7
    assert found["garrison_alert_failures_total{channel=mail}"] == 3
    assert found["garrison_alert_channel_up{channel=hook}"] == 1
    assert found["garrison_alert_channel_up{channel=mail}"] == 0
