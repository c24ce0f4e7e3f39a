"""``garrison audits``: what Garrison saw and did."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from garrison.audit.query import DEFAULT_LIMIT, AuditFilter, parse_since
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
from garrison.config import DEFAULT_DATA_DIR

app = typer.Typer(help="Audits: anomalies and rule violations, newest first.", no_args_is_help=True)


@app.command("list")
def list_audits(
    container: Annotated[str, typer.Option(help="Container name or id prefix.")] = "",
    image: Annotated[str, typer.Option(help="Image name or id prefix.")] = "",
    type_: Annotated[
        str,
        typer.Option("--type", help="processes, network, filesystem, vulnerability, compliance."),
    ] = "",
    effect: Annotated[str, typer.Option(help="alert, prevent, block.")] = "",
    since: Annotated[
        str, typer.Option(help="A duration back from now (10m, 2h, 7d) or an ISO time.")
    ] = "",
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = DEFAULT_LIMIT,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """List audits, filtered."""
    query = AuditFilter(
        container=container,
        image=image,
        type=type_,
        effect=effect,
        since=parse_since(since, time.time()) if since else None,
        limit=limit,
    )
    with open_console(data_dir) as console:
        audits = console.list_audits(query)
    if as_json:
        print_json([a.to_json() for a in audits])
        return
    table = Table("time", "container", "image", "type", "attackType", "effect", "count", "msg")
    for a in audits:
        table.add_row(
            when(a.time),
            shown(a.containerName),
            shown(a.imageName),
            shown(a.type),
            shown(a.attackType),
            shown(a.effect),
            str(a.count),
            shown(a.msg),  # what a container ran or wrote: anything at all
        )
    out.print(table)
