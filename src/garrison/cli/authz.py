"""``garrison authz``: serve the authorization gate, and say whether it answers.

Order matters (docs/authz.md): start ``garrison authz serve`` first, then dockerd with
``--authorization-plugin=NAME``; stop dockerd (or drop the option) before the plugin, because
dockerd refuses every API call while its plugin is down.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console as RichConsole

from garrison.audit.record import Audit
from garrison.cli.defaults import (
    DEFAULT_PLUGIN_NAME,
    DEFAULT_PLUGIN_SOCKET,
    DEFAULT_SCAN_TIMEOUT,
    PLUGIN_DIR,
)
from garrison.cli.scan import (
    DEFAULT_DATA_DIR,
    DEFAULT_DOCKER_HOST,
    DataDir,
    DockerHost,
    docker_client,
    open_vulndb,
)

if TYPE_CHECKING:
    from garrison.scan.gate import ServerConfig
    from garrison.watchdog import WatchdogState

DEFAULT_STALL_TIMEOUT = 2.0
ON_KILL = "so that a new plugin answers dockerd's waiting calls"
# dockerd holds or refuses every call while no plugin answers: restart at once, and keep the
# pauses of a plugin that keeps failing short (the defender's grow to 30 s).
PLUGIN_BACKOFF = (0.0, 0.5, 1.0, 2.0)
app = typer.Typer(help="The Docker authorization plugin (the gate).", no_args_is_help=True)
out = RichConsole(soft_wrap=True, highlight=False)

Name = Annotated[str, typer.Option("--name", help="Plugin name given to dockerd.")]
SocketPath = Annotated[Path, typer.Option("--socket", help="Where the plugin listens.")]
LinkDir = Annotated[
    Path, typer.Option("--link-dir", help="dockerd's plugin socket folder (a link goes there).")
]
SpecDir = Annotated[
    Path | None,
    typer.Option("--spec-dir", help="Also write NAME.spec here (e.g. /etc/docker/plugins)."),
]


ENV_FD = "GARRISON_AUTHZ_FD"
Watchdog = Annotated[
    bool,
    typer.Option(
        "--watchdog/--no-watchdog",
        help="Serve from a child process that a watchdog kills and replaces when it stops "
        "answering; dockerd's waiting calls are then answered by the new one.",
    ),
]
StallTimeout = Annotated[
    float,
    typer.Option(
        "--stall-timeout", min=0.5, max=60.0, help="Silence after which the watchdog acts (s)."
    ),
]
ScanTimeout = Annotated[
    float,
    typer.Option(
        "--scan-timeout",
        min=1.0,
        max=25.0,
        help="How long a create waits for its image's scan; then a blocking vulnerability "
        "rule refuses it and the scan goes on in the background (s).",
    ),
]


@app.command()
def serve(
    name: Name = DEFAULT_PLUGIN_NAME,
    socket_path: SocketPath = DEFAULT_PLUGIN_SOCKET,
    link_dir: LinkDir = PLUGIN_DIR,
    spec_dir: SpecDir = None,
    docker_host: DockerHost = DEFAULT_DOCKER_HOST,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    watchdog: Watchdog = True,
    stall_timeout: StallTimeout = DEFAULT_STALL_TIMEOUT,
    scan_timeout: ScanTimeout = DEFAULT_SCAN_TIMEOUT,
) -> None:
    """Answer dockerd's authorization requests until SIGINT or SIGTERM."""
    # The gate (the Docker SDK, starlette, the scanner) is imported by what serves, never
    # for --help (issue 17).
    from garrison.scan.gate import ServerConfig  # noqa: PLC0415
    from garrison.watchdog import WatchdogState, die_with_supervisor  # noqa: PLC0415

    config = ServerConfig(socket_path=socket_path, name=name, link_dir=link_dir, spec_dir=spec_dir)
    supervised = WatchdogState.from_env()
    if supervised is not None:  # the plugin itself, started by the watchdog below
        die_with_supervisor(supervised)
        fd = int(os.environ[ENV_FD])
        _serve(replace(config, fd=fd), docker_host, data_dir, scan_timeout, supervised)
        return
    if not watchdog:
        _serve(config, docker_host, data_dir, scan_timeout, None)
        return
    _supervise(config, data_dir, stall_timeout)


def _supervise(config: ServerConfig, data_dir: Path, stall_timeout: float) -> None:
    """Hold the listening socket and the registration; run the plugin as a watched child.
    While a stalled child is replaced, dockerd's calls wait in the socket's backlog."""
    from garrison.scan.gate.server import listen, register, unregister  # noqa: PLC0415
    from garrison.store import secure_data_dir  # noqa: PLC0415
    from garrison.watchdog import Supervisor  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    secure_data_dir(data_dir)  # before the socket is live: the child stores there
    listener = listen(config.socket_path)
    try:
        register(config)
        out.print(f"authorization plugin {config.name} listening on {config.socket_path}; "
                  f"start dockerd with --authorization-plugin={config.name}")  # fmt: skip
        argv = [sys.executable, *sys.orig_argv[1:]]
        env = {**os.environ, ENV_FD: str(listener.fileno())}
        keep = (listener.fileno(),)
        supervisor = Supervisor(
            argv, env, stall_timeout, keep_fds=keep, name="plugin", on_kill=ON_KILL,
            backoff=PLUGIN_BACKOFF,
        )  # fmt: skip
        code = supervisor.run()
        out.print("stopping: dockerd refuses every call until the plugin is back")
    finally:
        unregister(config)
        listener.close()
        config.socket_path.unlink(missing_ok=True)
    raise typer.Exit(code)


def _serve(
    config: ServerConfig,
    docker_host: str,
    data_dir: Path,
    scan_timeout: float,
    watched: WatchdogState | None,
) -> None:
    from garrison.console import Console  # noqa: PLC0415
    from garrison.scan.gate import GateServer, docker_containers, docker_passwd  # noqa: PLC0415
    from garrison.scan.scanner import Scanner  # noqa: PLC0415

    console = Console.open(data_dir)
    client = docker_client(docker_host)
    if watched is not None:
        _report_incidents(watched, console.store.add_audits)
    gate = console.gate(
        Scanner.for_docker(client, open_vulndb(data_dir)),
        containers=docker_containers(client),
        passwd=docker_passwd(client),
        scan_timeout=scan_timeout,
    )
    with GateServer(gate, config):
        if watched is None:
            out.print(f"authorization plugin {config.name} listening on {config.socket_path}; "
                      f"start dockerd with --authorization-plugin={config.name}")  # fmt: skip
        _wait_for_signal()
        if watched is None:
            out.print("stopping: dockerd refuses every call until the plugin is back")
    client.close()
    console.close()


def _report_incidents(watched: WatchdogState, store: Callable[[list[Audit]], object]) -> None:
    """Store the watchdog's reports of the plugins before this one, then say so."""
    from garrison.watchdog import defender_board  # noqa: PLC0415 - as in serve

    for incident in watched.pending:
        kind = "stalled" if incident.kind == "stall" else "crashed"
        store(
            [
                Audit(
                    time=incident.time,
                    hostname=socket.gethostname(),
                    type="defender",
                    attackType=f"plugin_{kind}",
                    effect="alert",
                    msg=f"authorization plugin pid {incident.pid} {incident.detail}; restarted by "
                    "the watchdog",
                    pid=incident.pid,
                )
            ]
        )
    board = defender_board()
    if board is not None and watched.pending:
        board.acknowledge(len(watched.pending))


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
    name: Name = DEFAULT_PLUGIN_NAME,
    link_dir: LinkDir = PLUGIN_DIR,
    spec_dir: Annotated[Path, typer.Option("--spec-dir")] = Path("/etc/docker/plugins"),
) -> None:
    """Say whether the plugin dockerd would use answers. Exit status 1 when it does not."""
    from garrison.scan.gate import probe_plugin, socket_of_spec  # noqa: PLC0415

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
