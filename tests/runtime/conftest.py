"""Fixtures of the runtime tests: a DockerRuntime on the session's private engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from garrison.devengine import PrivateEngine
from garrison.runtime import DockerRuntime


@pytest.fixture
def docker_runtime(engine: PrivateEngine, test_images: dict[str, str]) -> Iterator[DockerRuntime]:
    runtime = DockerRuntime(engine.base_url)
    try:
        yield runtime
    finally:
        runtime.close()
