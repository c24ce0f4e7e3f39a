"""Which process events source the sensors run on: BPF when it loads, else the proc connector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from garrison.config import ProcessEventSource
from garrison.defender.judge import Judge
from garrison.defender.policies import Policies
from garrison.defender.sensorset import SensorSet
from garrison.model.book import ModelBook
from garrison.sensors.bpf.proc_events import BpfProcEvents
from garrison.sensors.proc_connector import ProcConnector


@contextmanager
def started(source: ProcessEventSource) -> Iterator[SensorSet]:
    judge = Judge(ModelBook(), Policies("host"), lambda judged: None)
    sensors = SensorSet(judge, lambda event: None, process_events=source)
    sensors.start()
    try:
        yield sensors
    finally:
        sensors.stop()


def test_auto_runs_on_bpf_where_it_loads() -> None:
    with started("auto") as sensors:
        assert isinstance(sensors.connector, BpfProcEvents)
        assert sensors.counters()["processes"]["source"] == "bpf"
        assert "processes" in sensors.started


def test_without_clang_auto_falls_back_to_the_proc_connector_and_bpf_is_left_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no clang to build the programs with
    with started("auto") as sensors:
        assert isinstance(sensors.connector, ProcConnector)
        assert sensors.counters()["processes"]["source"] == "proc_connector"
        assert not sensors.records_skipped("c" * 64)
    with started("bpf") as sensors:
        assert "processes" not in sensors.started


def test_the_proc_connector_can_be_chosen() -> None:
    with started("proc_connector") as sensors:
        assert isinstance(sensors.connector, ProcConnector)
        assert sensors.connector.running
