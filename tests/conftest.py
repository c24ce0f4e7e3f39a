"""Shared fixtures: one private Docker engine per test session, the real test images, and
containers that are removed after each test even when it fails.

Set ``GARRISON_ENGINE_DIR`` to use another state directory and ``GARRISON_ENGINE_KEEP=1``
to reuse a running engine there and leave it up after the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.models.containers
import pytest
from hypothesis import settings

from garrison.devengine import EngineConfig, PrivateEngine, ensure_all, ensure_packages
from garrison.devengine.images import cache_dir_from_env
from garrison.runtime import DockerRuntime
from garrison.store import MemoryStore, SQLiteStore
from garrison.store.postgres import PostgresStore
from tests.pg import TEMPLATE, Cluster, private_cluster

TEST_ENGINE_DIR = Path("/var/tmp/garrison-test-engine")

# Property tests have no deadline: a loaded machine stalls now and then, and time is the
# benchmarks' to measure.
settings.register_profile("garrison", deadline=None)
settings.load_profile("garrison")

Container = docker.models.containers.Container
RunContainer = Callable[..., Container]


@pytest.fixture(scope="session")
def engine() -> Iterator[PrivateEngine]:
    """The session's private engine: started (or reused), stopped by pid at the end."""
    ensure_packages()
    config = EngineConfig.from_env(default_dir=TEST_ENGINE_DIR)
    # Two tests restart the engine: their containers (sleep ignores SIGTERM) are killed after
    # 2 s instead of dockerd's 15.
    config = dataclasses.replace(config, extra_args=("--shutdown-timeout=2",))
    eng = PrivateEngine(config).start()
    try:
        yield eng
    finally:
        if not config.keep:
            eng.stop()


@pytest.fixture(scope="session")
def docker_client(engine: PrivateEngine) -> Iterator[docker.DockerClient]:
    client = engine.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def test_images(docker_client: docker.DockerClient) -> dict[str, str]:
    """Every test image on the session engine, name → image id (built once, then cached)."""
    return ensure_all(docker_client, cache_dir_from_env())


@pytest.fixture
def docker_runtime(engine: PrivateEngine, test_images: dict[str, str]) -> Iterator[DockerRuntime]:
    """Garrison's own runtime client on the session's engine."""
    runtime = DockerRuntime(engine.base_url)
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def run_container(
    docker_client: docker.DockerClient, test_images: dict[str, str]
) -> Iterator[RunContainer]:
    """Start detached containers; each is removed (forced) when the test ends — also one
    whose start failed after it was created."""
    started: list[Container] = []

    def run(image: str, command: Any = None, **kwargs: Any) -> Container:
        container = docker_client.containers.create(image, command, **kwargs)
        started.append(container)
        container.start()
        container.reload()
        return container

    try:
        yield run
    finally:
        remove_all(started)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (a data directory about to be full), unmounted at the end even when the
    test fails."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], check=True
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def remove_all(containers: list[Container]) -> None:
    """Remove each container, even when removing another failed, and wait until each is gone
    (its name free for the next test); then report the failures."""
    failures: list[str] = []
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # "removal already in progress": it goes anyway
                failures.append(f"{container.name}: {exc}")
                continue
        if not gone(container):
            failures.append(f"{container.name}: still there 30 s after its removal")
    assert not failures, failures


def gone(container: Container, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            container.reload()
        except docker.errors.NotFound:
            return True
        time.sleep(0.05)
    return False


AnyStore = SQLiteStore | PostgresStore | MemoryStore


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    """The store on the real SQLite file, on a real PostgreSQL database (of the session's
    private cluster) and as the in-memory fake: what a test proves with it holds for all three
    (a module may define its own ``store`` to add to it)."""
    with made_store(request, tmp_path) as made:
        yield made


@contextlib.contextmanager
def made_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnyStore]:
    """The store ``request.param`` names (sqlite, postgresql, memory): closed at the end, its
    PostgreSQL database dropped."""
    if request.param == "postgresql":
        with postgres_store(request.getfixturevalue("postgres")) as pg:
            yield pg
        return
    made = SQLiteStore(tmp_path / "data" / "garrison.db") if request.param == "sqlite" else None
    made = made or MemoryStore()
    try:
        yield made
    finally:
        made.close()


@contextlib.contextmanager
def postgres_store(cluster: Cluster) -> Iterator[PostgresStore]:
    """A store in a new database of ``cluster``, copied from the migrated template."""
    name = cluster.create_database(TEMPLATE)
    store = PostgresStore(cluster.url(name))
    try:
        yield store
    finally:
        store.close()
        cluster.drop_database(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """The session's private PostgreSQL cluster, with a template database already migrated
    (each store test copies it: faster than migrating each)."""
    with private_cluster() as cluster:
        cluster.create_database_named(TEMPLATE)
        PostgresStore(cluster.url(TEMPLATE)).close()
        yield cluster
