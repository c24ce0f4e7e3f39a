"""``garrison defender``: the defender of one host of a central console (many hosts), which it
reaches over mutual TLS; ``garrison run`` is the all-in-one form with its console here."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import ContainerdAddress, ContainerdNamespace, RuntimeOption, out
from garrison.errors import ConfigError


def defender(
    console: Annotated[
        str,
        typer.Option(
            "--console",
            envvar="GARRISON_REMOTE_CONSOLE",
            help="The console's defender listener, https://HOST:PORT (`garrison console serve "
            "--defender-address`).",
            show_default=False,
        ),
    ],
    enrol_token: Annotated[
        str | None,
        typer.Option(
            "--enrol-token",
            envvar="GARRISON_ENROL_TOKEN",
            help="One-time token (gse_…, `garrison hosts token create` on the console): "
            "enrols this host at its first start; ignored once enrolled.",
            show_default=False,
        ),
    ] = None,
    ca_sha256: Annotated[
        str | None,
        typer.Option(
            "--console-ca-sha256",
            envvar="GARRISON_CONSOLE_CA_SHA256",
            help="SHA-256 of the console CA's certificate, printed with the token: enrolment "
            "trusts that CA alone.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="This host's name at the console (default: its hostname)."),
    ] = None,
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    docker_host: Annotated[
        str | None,
        typer.Option("--docker-host", help="Docker engine to defend (as garrison run's)."),
    ] = None,
    block_deletes_pod: Annotated[
        bool | None,
        typer.Option(
            "--block-deletes-pod/--no-block-deletes-pod",
            help="Delete a blocked Kubernetes container's pod too, through the API server "
            "with the pod's service account (env GARRISON_BLOCK_DELETES_POD; default off; "
            "docs/kubernetes.md).",
            show_default=False,
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="GARRISON_DATA_DIR",
            help=f"This host's data: its certificate, audit spool, journal (default "
            f"{DEFAULT_DATA_DIR}).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", envvar="GARRISON_CONFIG", help="YAML settings file."),
    ] = None,
) -> None:
    """Defend this host for a central console: enrol at the first start (with --enrol-token
    and --console-ca-sha256), then report audits, models and status to the console and take
    its rules, over mutual TLS. While the console is away the defender keeps enforcing with
    the last rules it had, numbers and keeps its audits, and sends them once it answers —
    each once. Settings as for `garrison run` (--config, GARRISON_* variables)."""
    from garrison.cli.run import launch  # noqa: PLC0415 - the defender's imports
    from garrison.config import load_settings  # noqa: PLC0415
    from garrison.watchdog import WatchdogState  # noqa: PLC0415

    overrides = {
        "runtime": runtime,
        "containerd_address": containerd_address,
        "containerd_namespace": containerd_namespace,
        "docker_host": docker_host,
        "block_deletes_pod": block_deletes_pod,
        "data_dir": data_dir,
        "remote_console": console,
    }
    settings = load_settings(config, overrides)
    if WatchdogState.from_env() is None:
        name = _enrolled(settings.data_dir, console, enrol_token, ca_sha256, host)
    else:  # the watchdog's defender: enrolled by its parent, under the name it enrolled with
        name = _enrolled(settings.data_dir, console, None, None, None)
    settings = settings.model_copy(update={"hostname": name, "console_address": "off"})
    launch(settings)


def _enrolled(
    data_dir: Path, url: str, token: str | None, ca_sha256: str | None, host: str | None
) -> str:
    """This host's name at the console: enrolled before, or now with the token."""
    from garrison.fleet.join import enrol, joined  # noqa: PLC0415

    found = joined(data_dir)
    if found is not None:
        if found["url"].rstrip("/") != url.rstrip("/"):
            raise ConfigError(f"this host enrolled with {found['url']}, not {url}")
        return found["host"]
    if not token or not ca_sha256:
        raise ConfigError(
            "this host has not enrolled yet: give --enrol-token and --console-ca-sha256 "
            "(`garrison hosts token create` on the console prints both)"
        )
    name = enrol(data_dir, url, token, ca_sha256, host or socket.gethostname())
    out.print(f"Enrolled with {url} as {name}.")
    return name
