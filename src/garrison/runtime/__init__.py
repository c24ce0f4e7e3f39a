"""Containers: the runtime seam (Docker now), its in-memory fake, and the container tracker."""

from __future__ import annotations

from garrison.errors import RuntimeRefused
from garrison.runtime.base import (
    ContainerInfo,
    ContainerRuntime,
    EventStream,
    RestartPolicy,
    RuntimeEvent,
    orchestrator_of,
)
from garrison.runtime.docker import DockerRuntime
from garrison.runtime.fake import FakeRuntime
from garrison.runtime.tracker import (
    Backoff,
    ContainerListener,
    ContainerTracker,
    ListenerBase,
    TrackerStats,
)

__all__ = [
    "Backoff",
    "ContainerInfo",
    "ContainerListener",
    "ContainerRuntime",
    "ContainerTracker",
    "DockerRuntime",
    "EventStream",
    "FakeRuntime",
    "ListenerBase",
    "RestartPolicy",
    "RuntimeEvent",
    "RuntimeRefused",
    "TrackerStats",
    "orchestrator_of",
]
