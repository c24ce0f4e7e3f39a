"""``garrison authz``: serve the authorization gate, and say whether it answers.

Order matters (docs/authz.md): start ``garrison authz serve`` first, then dockerd with
``--authorization-plugin=NAME``; stop dockerd (or drop the option) before the plugin, because
dockerd refuses every API call while its plugin is down.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from garrison.audit.record import Audit
from garrison.cli.scan import (
    DEFAULT_DATA_DIR,
    DEFAULT_DOCKER_HOST,
    DataDir,
    DockerHost,
    docker_client,
    open_vulndb,
)
from garrison.scan.gate import (
    DEFAULT_NAME,
    DEFAULT_SOCKET,
    PLUGIN_DIR,
    Gate,
    GateServer,
    ServerConfig,
    StoredPolicies,
    docker_containers,
    probe_plugin,
    socket_of_spec,
)
from garrison.scan.scanner import Scanner
from garrison.store import SQLiteStore

app = typer.Typer(help="The Docker authorization plugin (the gate).", no_args_is_help=True)
out = Console(soft_wrap=True, highlight=False)

Name = Annotated[str, typer.Option("--name", help="Plugin name given to dockerd.")]
SocketPath = Annotated[Path, typer.Option("--socket", help="Where the plugin listens.")]
LinkDir = Annotated[
    Path, typer.Option("--link-dir", help="dockerd's plugin socket folder (a link goes there).")
]
SpecDir = Annotated[
    Path | None,
    typer.Option("--spec-dir", help="Also write NAME.spec here (e.g. /etc/docker/plugins)."),
]


@app.command()
def serve(
    name: Name = DEFAULT_NAME,
    socket_path: SocketPath = DEFAULT_SOCKET,
    link_dir: LinkDir = PLUGIN_DIR,
    spec_dir: SpecDir = None,
    docker_host: DockerHost = DEFAULT_DOCKER_HOST,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Answer dockerd's authorization requests until SIGINT or SIGTERM."""
    store = SQLiteStore.in_dir(data_dir)
    client = docker_client(docker_host)

    def audit(record: Audit) -> None:
        store.add_audits([record])

    def is_blocked(container_id: str) -> bool:
        return any(b.container_id == container_id for b in store.list_blocked())

    gate = Gate(
        Scanner.for_docker(client, open_vulndb(data_dir)),
        StoredPolicies(store),
        on_audit=audit,
        is_blocked=is_blocked,
        containers=docker_containers(client),
    )
    config = ServerConfig(socket_path=socket_path, name=name, link_dir=link_dir, spec_dir=spec_dir)
    with GateServer(gate, config):
        out.print(f"authorization plugin {name} listening on {socket_path}; "
                  f"start dockerd with --authorization-plugin={name}")  # fmt: skip
        _wait_for_signal()
        out.print("stopping: dockerd refuses every call until the plugin is back")
    client.close()
    store.close()


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@app.command()
def status(
    name: Name = DEFAULT_NAME,
    link_dir: LinkDir = PLUGIN_DIR,
    spec_dir: Annotated[Path, typer.Option("--spec-dir")] = Path("/etc/docker/plugins"),
) -> None:
    """Say whether the plugin dockerd would use answers. Exit status 1 when it does not."""
    link = link_dir / f"{name}.sock"
    spec = spec_dir / f"{name}.spec"
    target = link if link.exists() or link.is_symlink() else socket_of_spec(spec)
    if target is None:
        out.print(f"plugin {name}: not registered (no {link}, no {spec})")
        raise typer.Exit(1)
    result = probe_plugin(target)
    out.print(f"plugin {name}: {'answering' if result.answering else 'DOWN'} — {result.detail}")
    if not result.answering:
        out.print("dockerd started with this plugin refuses every call; see docs/authz.md")
        raise typer.Exit(1)
