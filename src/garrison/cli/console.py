"""``garrison console serve``: the console (REST API) on a store, without a defender."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from garrison.cli.defaults import DEFAULT_CONSOLE_ADDRESS, DEFAULT_DATA_DIR
from garrison.cli.options import (
    ContainerdAddress,
    ContainerdNamespace,
    DataDir,
    RuntimeOption,
    StoreUrl,
    open_local_console,
    out,
    runtime_kind,
    runtime_of_container,
)
from garrison.errors import ConfigError

if TYPE_CHECKING:
    from garrison.console import Console
    from garrison.fleet.server import DefenderListener
    from garrison.runtime.base import ContainerRuntime

app = typer.Typer(help="The console: the REST API over the store.", no_args_is_help=True)


@app.command()
def serve(
    address: Annotated[
        str, typer.Option(help="HOST:PORT to listen on (loopback by default).")
    ] = DEFAULT_CONSOLE_ADDRESS,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate: serve HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM key of --tls-cert.")] = None,
    docker_host: Annotated[
        str | None,
        typer.Option(
            "--docker-host", envvar="DOCKER_HOST", help="Docker engine of this host, for unblock."
        ),
    ] = None,
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    store: StoreUrl = None,
    defender_address: Annotated[
        str | None,
        typer.Option(
            "--defender-address",
            help="HOST:PORT where hosts' defenders enrol and report (HTTPS, mutual TLS with "
            "the console's own CA, kept in the store); none by default.",
            show_default=False,
        ),
    ] = None,
    defender_name: Annotated[
        list[str] | None,
        typer.Option(
            "--defender-name",
            help="A DNS name or address hosts dial the listener by, for its certificate "
            "(repeat for several; loopback is always in).",
            show_default=False,
        ),
    ] = None,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port",
            help="Share --address and --defender-address with other replicas on this machine "
            "(SO_REUSEPORT; each with its own --data-dir, all on one --store PostgreSQL).",
        ),
    ] = False,
) -> None:
    """Serve the REST API (/api/v1/…, OpenAPI at /api/v1/openapi.json) and the pages until
    Ctrl-C. Every request needs a token (`garrison users token create`) or a login.

    The store is garrison.db in --data-dir, or a PostgreSQL database with --store (or
    GARRISON_STORE, which the other commands read too): migrated to this Garrison's schema at
    start. Replicas on one PostgreSQL share everything, the console's CA included: put them
    behind one address (a load balancer, or --reuse-port on one machine). An unblock of a
    container of this host restores its restart policy through --runtime (as `garrison
    containers unblock` does); another host's defender restores its own."""
    # FastAPI, uvicorn and the Docker SDK load when the console is served, not for --help.
    from garrison.api.server import ConsoleServer, first_admin  # noqa: PLC0415

    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together")
    tls = (tls_cert, tls_key) if tls_cert and tls_key else None
    runtime_kind(runtime)  # a wrong --runtime is said now, not at the first unblock

    def this_host() -> ContainerRuntime:
        return runtime_of_container(runtime, docker_host, containerd_address, containerd_namespace)

    with open_local_console(data_dir, store) as console:
        server = ConsoleServer(console, address, this_host, tls, reuse_port=reuse_port)
        names = defender_name or []
        listener = _listener(console, data_dir, defender_address, names, reuse_port)
        hint = first_admin(console, data_dir)
        out.print(f"Garrison console on {server.url} (API docs: {server.url}/api/docs)")
        if listener is not None:
            out.print(f"Defenders enrol and report at {listener.url}")
        if hint:
            out.print(hint)
        try:
            server.run()
        finally:
            if listener is not None:
                listener.stop()


def _listener(
    console: Console, data_dir: Path, address: str | None, names: list[str], reuse_port: bool
) -> DefenderListener | None:
    if not address:
        return None
    from garrison.fleet.server import DefenderListener, open_ca  # noqa: PLC0415
    from garrison.fleet.service import FleetService  # noqa: PLC0415

    service = FleetService(console.store, open_ca(console.store, data_dir), console.clock)
    folder = data_dir / "listener"  # this replica's server certificate
    listener = DefenderListener(service, address, names, directory=folder, reuse_port=reuse_port)
    return listener.start()
