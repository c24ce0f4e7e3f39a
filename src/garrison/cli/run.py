"""``garrison run``: the all-in-one default on one host."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import docker
import docker.errors
import typer
from rich.console import Console

from garrison.devengine import EngineConfig, PrivateEngine, ensure_packages
from garrison.devengine.engine import DEFAULT_DIR

out = Console(soft_wrap=True)


def reachable(base_url: str) -> bool:
    """True when a Docker engine answers at ``base_url``."""
    try:
        client = docker.DockerClient(base_url=base_url, timeout=5)
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except (docker.errors.DockerException, OSError):
        return False
    finally:
        client.close()


def resolve_docker_host(docker_host: str | None, engine_dir: Path) -> str:
    """The engine to defend: the one named, the host's default, or a private one started now."""
    if docker_host:
        return docker_host
    default = "unix:///var/run/docker.sock"
    if os.path.exists("/var/run/docker.sock") and reachable(default):
        return default
    ensure_packages()
    engine = PrivateEngine(EngineConfig(state_dir=engine_dir, keep=True)).start()
    verb = "reused" if engine.reused else "started"
    out.print(f"No Docker engine answered; {verb} a private one: DOCKER_HOST={engine.base_url}")
    return engine.base_url


def run(
    docker_host: Annotated[
        str | None,
        typer.Option("--docker-host", envvar="DOCKER_HOST", help="Docker engine to defend."),
    ] = None,
    engine_dir: Annotated[
        Path,
        typer.Option(
            "--engine-dir",
            envvar="GARRISON_ENGINE_DIR",
            help="State dir of the private engine started when no Docker engine answers.",
        ),
    ] = DEFAULT_DIR,
) -> None:
    """Run Garrison on this host: the defender and its console store (all-in-one)."""
    host = resolve_docker_host(docker_host, engine_dir)
    out.print(f"Docker engine: {host}")
    out.print("The defender is not built yet (issue 3): nothing is being defended.")
