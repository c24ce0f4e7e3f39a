"""Options shared by several commands, and output helpers."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console as RichConsole
from rich.markup import escape

from garrison.errors import InvalidInput
from garrison.text import escape_unsafe

if TYPE_CHECKING:
    from garrison.config import RuntimeKind
    from garrison.console import Console, ConsoleLike
    from garrison.runtime.base import ContainerRuntime

out = RichConsole(soft_wrap=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="GARRISON_DATA_DIR",
        help="Folder of Garrison's store (garrison.db) and other data (not used when "
        "GARRISON_CONSOLE_URL names a remote console).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
EngineOfContainer = Annotated[
    str | None,
    typer.Option(
        "--docker-host",
        envvar="DOCKER_HOST",
        help="Docker engine of the container (a remote console uses its own).",
    ),
]


def runtime_of_container(
    runtime: str | None, docker_host: str | None, address: str | None, namespace: str | None
) -> ContainerRuntime:
    """The runtime a command acts on: named by these options, else the first that answers
    (``garrison.runtime.choose.runtime_for``)."""
    from garrison.runtime.choose import runtime_for  # noqa: PLC0415 - the Docker SDK: not for --help

    return runtime_for(runtime_kind(runtime), docker_host, address, namespace)


def runtime_kind(runtime: str | None) -> RuntimeKind:
    """``--runtime``'s value (``auto`` when not given); InvalidInput for any other word."""
    kind = _RUNTIMES.get(runtime or "auto")
    if kind is None:
        raise InvalidInput(f"--runtime {runtime!r}: docker, containerd or auto")
    return kind


_RUNTIMES: dict[str, RuntimeKind] = {"docker": "docker", "containerd": "containerd", "auto": "auto"}

RuntimeOption = Annotated[
    str | None,
    typer.Option(
        "--runtime",
        envvar="GARRISON_RUNTIME",
        help="Container runtime: docker, containerd, auto (default: Docker when "
        "--docker-host or DOCKER_HOST names one or one answers at its default socket, else "
        "containerd).",
        show_default=False,
    ),
]
ContainerdAddress = Annotated[
    str | None,
    typer.Option(
        "--containerd-address",
        envvar="GARRISON_CONTAINERD_ADDRESS",
        help="containerd's socket (default /run/containerd/containerd.sock).",
        show_default=False,
    ),
]
ContainerdNamespace = Annotated[
    str | None,
    typer.Option(
        "--containerd-namespace",
        envvar="GARRISON_CONTAINERD_NAMESPACE",
        help="The containerd namespace: default (ctr, nerdctl) or k8s.io (Kubernetes' "
        "pods); a defender defends one.",
        show_default=False,
    ),
]


STORE_ENV = "GARRISON_STORE"
StoreUrl = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="The console's store in PostgreSQL (postgresql://USER@HOST/DB; a password is "
        "best left to ~/.pgpass or PGPASSWORD) instead of garrison.db in --data-dir.",
        show_default=False,
    ),
]


def store_url() -> str | None:
    """The PostgreSQL store named by ``GARRISON_STORE``; None: SQLite in the data folder."""
    return os.environ.get(STORE_ENV) or None


def open_console(data_dir: Path) -> ConsoleLike:
    """The console a command reads and changes: the one at ``GARRISON_CONSOLE_URL`` through
    its REST API when that is set, else the store in ``data_dir``."""
    # Imported here, not above: the console brings the store, SQLAlchemy, httpx and more,
    # which no --help needs (issue 17: the CLI starts in a fraction of a second).
    from garrison.console import Console, RemoteConsole, RemoteSettings  # noqa: PLC0415

    settings = RemoteSettings.from_env(os.environ)
    if settings is not None:
        return RemoteConsole(settings)
    return Console.open(data_dir, store_url=store_url())


def open_local_console(data_dir: Path, url: str | None = None) -> Console:
    """The store in ``data_dir`` (or PostgreSQL at ``url``, else ``GARRISON_STORE``) whatever
    ``GARRISON_CONSOLE_URL`` says: for what only the console's own host can do (users and
    their tokens, serving the console, storing scans)."""
    from garrison.console import Console  # noqa: PLC0415 - as in open_console

    return Console.open(data_dir, store_url=url or store_url())


def print_json(data: Any) -> None:
    """JSON for scripts: plain print, no colours or wrapping."""
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def when(epoch: float | int | None) -> str:
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def shown(value: object, keep: str = "") -> str:
    """Text from elsewhere (a container, an archive, a file, the store) made safe to print
    with rich: its markup escaped, and characters that act on a terminal (control, bidi)
    written as escapes, except those in ``keep``."""
    return escape(escape_unsafe(str(value), keep))
