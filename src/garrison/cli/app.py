"""The root ``garrison`` command and its sub-commands."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from garrison.cli import (
    admission,
    alerts,
    audits,
    authz,
    console,
    containers,
    engine,
    forensics,
    hosts,
    incidents,
    models,
    policies,
    rules,
    scan,
    users,
    vulndb,
)
from garrison.cli.defender import defender
from garrison.cli.options import shown
from garrison.cli.run import run
from garrison.cli.status import status
from garrison.errors import GarrisonError

app = typer.Typer(
    name="garrison",
    help="Garrison: container runtime defense. Learns how each container behaves and "
    "stops it when it does something else.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(asked: bool) -> None:
    if asked:
        from garrison import __version__  # noqa: PLC0415 - only when asked

        print(f"garrison {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Garrison: container runtime defense. Learns how each container behaves and stops it
    when it does something else."""


app.command()(run)
app.command()(defender)
app.command()(status)
app.add_typer(audits.app, name="audits")
app.add_typer(alerts.app, name="alerts")
app.add_typer(incidents.app, name="incidents")
app.add_typer(forensics.app, name="forensics")
app.add_typer(models.app, name="models")
app.add_typer(rules.app, name="rules")
app.add_typer(containers.app, name="containers")
app.add_typer(scan.app, name="scan")
app.add_typer(policies.app, name="policies")
app.add_typer(vulndb.app, name="vulndb")
app.add_typer(authz.app, name="authz")
app.add_typer(admission.app, name="admission")
app.add_typer(engine.app, name="engine")
app.add_typer(users.app, name="users")
app.add_typer(console.app, name="console")
app.add_typer(hosts.app, name="hosts")

err = Console(stderr=True, soft_wrap=True)


def main() -> None:
    """Entry point: a GarrisonError becomes one clear line on stderr and exit status 1."""
    try:
        app()
    except GarrisonError as exc:
        err.print(f"[red]garrison:[/red] {shown(exc, keep=chr(10))}", highlight=False)
        sys.exit(1)
