"""Which process events source the sensors run on: BPF when it loads, else the proc connector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from garrison.config import ProcessEventSource
from garrison.defender.judge import Judge
from garrison.defender.policies import Policies
from garrison.defender.sensorset import SensorSet
from garrison.errors import SensorError
from garrison.model.book import ModelBook
from garrison.runtime.base import ContainerInfo
from garrison.sensors.base import Sensor, WatchRequest
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


class CountingSensor:
    """A sensor of the test's own, registered with one line: what the set asks of it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")

    def watch(self, request: WatchRequest) -> None:
        self.calls.append(f"watch {request.container.name} judged={request.rootfs_judged}")
        if request.container.name == "refused":
            raise SensorError("container refu5ed: no such thing")

    def unwatch(self, container_id: str) -> None:
        self.calls.append(f"unwatch {container_id}")

    def status(self) -> dict[str, Any]:
        return {"events": len(self.calls)}


def test_a_new_sensor_is_one_line_of_registration() -> None:
    counting = CountingSensor()

    class WithCounting(SensorSet):
        def _register(self) -> dict[str, Sensor]:
            return {**super()._register(), "counting": counting}

    judge = Judge(ModelBook(), Policies("host"), lambda judged: None)
    sensors = WithCounting(judge, lambda event: None, process_events="proc_connector")
    sensors.start()
    try:
        box = ContainerInfo(id="a" * 64, name="box", image_name="i", image_id="sha256:1")
        refused = ContainerInfo(id="b" * 64, name="refused", image_name="i", image_id="sha256:1")
        sensors.watch(box)
        sensors.watch(refused)
        table = sensors.counters()["counting"]
        assert (table["running"], table["events"]) == (True, 3)
        assert table["unwatched"] == {"b" * 64: "container refu5ed: no such thing"}
        sensors.unwatch("b" * 64)
        assert sensors.counters()["counting"]["unwatched"] == {}
    finally:
        sensors.stop()
    # no merged dir: the exec sensor cannot judge its root, and says so to the sensors after it
    assert counting.calls == [
        "start", "watch box judged=False", "watch refused judged=False", f"unwatch {'b' * 64}",
        "stop",
    ]  # fmt: skip
