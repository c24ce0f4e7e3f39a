"""Prometheus metrics, read from the store at each scrape (``garrison run --metrics-address``).

Everything comes from what the store holds — the defender's last status report (written every
``status_interval``), the audits, the outbox — so a scrape never reaches into the threads that
answer the kernel, and the figures are those ``garrison status`` and ``garrison alerts
outbox`` show. Served on loopback unless told otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from garrison.alerts.health import STATUS_SOURCE
from garrison.errors import ConfigError, GarrisonError
from garrison.store.base import Store

log = logging.getLogger(__name__)

SENSOR_COUNTERS = ("events", "drops", "late", "errors")


class GarrisonCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            status = self.store.get_status() or {}
            audits = self.store.audit_totals()
            outbox = self.store.outbox_totals()
            alerts = self.store.get_status(STATUS_SOURCE) or {}
        except GarrisonError as exc:  # a scrape of a broken store says so, and no more
            log.error("metrics: the store is unreadable: %s", exc)
            yield _gauge("garrison_store_up", "1 when the store could be read", 0.0)
            return
        yield _gauge("garrison_store_up", "1 when the store could be read", 1.0)
        yield _audits(audits)
        yield from _outbox(outbox)
        yield from _channels(alerts.get("channels") or {})
        yield from _defender(status)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _audits(totals: Mapping[tuple[str, str], int]) -> Metric:
    family = CounterMetricFamily(
        "garrison_audits", "Occurrences audited, by audit type and effect",
        labels=["type", "effect"],
    )  # fmt: skip
    for (kind, effect), count in sorted(totals.items()):
        family.add_metric([kind, effect], count)
    return family


def _outbox(totals: Mapping[tuple[str, str], int]) -> Iterator[Metric]:
    family = GaugeMetricFamily(
        "garrison_alert_deliveries", "Alert deliveries in the outbox, by channel and state",
        labels=["channel", "state"],
    )  # fmt: skip
    for (channel, state), count in sorted(totals.items()):
        family.add_metric([channel, state], count)
    yield family


def _channels(channels: Mapping[str, Any]) -> Iterator[Metric]:
    """Each channel's health as the alert dispatcher last reported it."""
    sent = CounterMetricFamily("garrison_alert_sent", "Alerts a channel took",
                               labels=["channel"])  # fmt: skip
    failures = CounterMetricFamily(
        "garrison_alert_failures", "Failed delivery attempts (each retried with backoff)",
        labels=["channel"],
    )  # fmt: skip
    up = GaugeMetricFamily(
        "garrison_alert_channel_up", "0 after a failed attempt until one succeeds",
        labels=["channel"],
    )  # fmt: skip
    for name, health in sorted(channels.items()):
        if isinstance(health, Mapping):
            sent.add_metric([str(name)], float(health.get("sent") or 0))
            failures.add_metric([str(name)], float(health.get("failures") or 0))
            up.add_metric([str(name)], 1.0 if health.get("up", True) else 0.0)
    yield from (sent, failures, up)


def _latency(doc: Mapping[str, Any]) -> Metric:
    family = HistogramMetricFamily(
        "garrison_verdict_latency_seconds",
        "How long a process waited for the defender's answer to a permission event",
        labels=["kind"],
    )
    for kind, h in sorted(doc.items()):
        if not isinstance(h, Mapping) or len(h.get("le") or ()) != len(h.get("buckets") or ()):
            continue
        # repr gives the bound as Prometheus's own clients write it (5e-05, 0.001, 1.0)
        pairs = zip(h["le"], h["buckets"], strict=True)
        buckets = [(repr(float(le)), float(n)) for le, n in pairs]
        buckets.append(("+Inf", float(h.get("count") or 0)))
        family.add_metric([str(kind)], buckets, sum_value=float(h.get("sum") or 0))
    return family


def _defender(status: Mapping[str, Any]) -> Iterator[Metric]:
    yield _gauge("garrison_defender_status_time_seconds", "When the defender last reported",
                 float(status.get("updatedAt") or 0))  # fmt: skip
    yield _gauge("garrison_containers_watched", "Containers the defender watches",
                 float(len(status.get("watching") or ())))  # fmt: skip
    models = GaugeMetricFamily("garrison_models", "Runtime models by state", labels=["state"])
    for state, count in sorted((status.get("models") or {}).items()):
        models.add_metric([str(state)], float(count))
    yield models
    yield from _enforcement(status.get("enforcement") or {})
    yield from _forensics(status.get("forensics") or {})
    yield from _sensors(status.get("sensors") or {})
    events = status.get("events") or {}
    yield CounterMetricFamily("garrison_verdicts", "Exec permission events the defender answered",
                              value=float(events.get("verdicts") or 0))  # fmt: skip
    yield _latency(status.get("verdictLatency") or {})


def _enforcement(doc: Mapping[str, Any]) -> Iterator[Metric]:
    for key, name, help_text in (
        ("blocks", "garrison_blocks", "Containers blocked since the defender started"),
        ("kills", "garrison_process_kills", "Processes killed after they started"),
        ("failures", "garrison_enforcement_failures", "Block attempts Docker refused"),
    ):
        yield CounterMetricFamily(name, help_text, value=float(doc.get(key) or 0))
    yield _gauge("garrison_blocked_containers", "Containers kept stopped",
                 float(doc.get("blocked") or 0))  # fmt: skip
    yield _gauge("garrison_pending_blocks", "Blocks not done yet", float(doc.get("pending") or 0))
    deletions = CounterMetricFamily("garrison_pod_deletions", "Pods of blocked containers the "
                                    "defender deleted or tried to", labels=["outcome"])  # fmt: skip
    for outcome, count in sorted((doc.get("podDeletions") or {}).items()):
        deletions.add_metric([str(outcome)], float(count))
    yield deletions


def _forensics(doc: Mapping[str, Any]) -> Iterator[Metric]:
    for key, name, help_text in (
        ("captured", "garrison_forensics_bundles", "Forensics bundles captured"),
        ("failed", "garrison_forensics_failures", "Forensics captures that failed"),
        ("written", "garrison_journal_entries", "Journal entries written"),
        ("dropped", "garrison_journal_dropped", "Journal entries dropped (writer behind, disk)"),
    ):
        yield CounterMetricFamily(name, help_text, value=float(doc.get(key) or 0))


def _sensors(doc: Mapping[str, Any]) -> Iterator[Metric]:
    for counter in SENSOR_COUNTERS:
        family = CounterMetricFamily(
            f"garrison_sensor_{counter}", f"Sensor {counter} since the defender started",
            labels=["sensor"],
        )  # fmt: skip
        for sensor, counters in sorted(doc.items()):
            if isinstance(counters, Mapping):
                family.add_metric([str(sensor)], float(counters.get(counter) or 0))
        yield family


def serve_metrics(store: Store, address: str) -> WSGIServer:
    """Serve ``/metrics`` on ``HOST:PORT`` in a thread; ConfigError for a bad address, one
    already in use included."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"metrics address must be HOST:PORT, not {address[:60]!r}")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GarrisonCollector(store))
    try:
        server, _thread = start_http_server(int(port), host.strip("[]"), registry=registry)
    except OSError as exc:
        raise ConfigError(f"metrics address {address}: {exc.strerror}") from exc
    return server
