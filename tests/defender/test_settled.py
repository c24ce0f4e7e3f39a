"""A block's capture waits until what the sensors handed on is handled (``Defender.settled``):
the file sensors' kernel queues read (tests/sensors/test_fanotify_wrapper.py proves a reader's
``caught_up``), then the loop's inbox taken up to what was in it then."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from garrison.config import Settings
from garrison.console import Console
from garrison.defender.core import Defender
from garrison.runtime.fake import FakeRuntime
from garrison.sensors.events import FileEvent


@pytest.fixture
def defender(tmp_path: Path) -> Iterator[Defender]:
    console = Console.open(tmp_path / "data")
    link = console.link(flush_interval=60)
    try:
        yield Defender(Settings(data_dir=tmp_path / "data", hostname="h"), FakeRuntime(), link)
    finally:
        link.close()
        console.close()


def test_settled_waits_until_the_loop_took_what_was_handed_on(defender: Defender) -> None:
    async def scenario() -> tuple[bool, bool, bool]:
        defender.inbox.bind(asyncio.get_running_loop())
        idle = await defender.settled(timeout=5.0)  # nothing handed on: at once
        defender.inbox.put(FileEvent("c" * 64, "/tmp/payload", "create", 7, "/usr/bin/cp", 1.0))
        waiting = await defender.settled(timeout=0.2)  # no loop takes it: runs out
        asyncio.get_running_loop().call_later(0.1, defender.inbox.drain)  # the loop's round
        taken = await defender.settled(timeout=5.0)
        return idle, waiting, taken

    assert asyncio.run(scenario()) == (True, False, True)
