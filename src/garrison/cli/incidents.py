"""``garrison incidents``: audits of one container correlated into stories."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from garrison.audit.mitre import mitre_of
from garrison.audit.query import DEFAULT_LIMIT
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
from garrison.config import DEFAULT_DATA_DIR
from garrison.incidents import IncidentFilter

app = typer.Typer(
    help="Incidents: audits of one container that tell one story (a binary written then run, "
    "an unknown process that connected out, a shell started by a server, a scan, a miner).",
    no_args_is_help=True,
)
Ref = Annotated[str, typer.Argument(help="The incident's id (as listed).")]


@app.command("list")
def list_incidents(
    state: Annotated[str, typer.Option(help="open or archived (default: both).")] = "",
    container: Annotated[str, typer.Option(help="Container name or id prefix.")] = "",
    kind: Annotated[
        str,
        typer.Option(
            help="writtenThenExecuted, processThenConnection, shellFromServer, portScan, "
            "cryptoMiner, reverseShell."
        ),
    ] = "",
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = DEFAULT_LIMIT,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """List incidents, the most recently active first."""
    query = IncidentFilter(state=state, container=container, kind=kind, limit=limit)
    with open_console(data_dir) as console:
        found = console.list_incidents(query)
    if as_json:
        print_json([i.to_json() for i in found])
        return
    table = Table("id", "last", "state", "container", "kind", "audits", "title")
    for i in found:
        table.add_row(str(i.id), when(i.lastTime), i.state, shown(i.containerName),
                      i.kind, str(len(i.auditIds)), shown(i.title))  # fmt: skip
    out.print(table)


@app.command("show")
def show_incident(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """One incident and its story: each audit in order, with its ATT&CK tactic and technique."""
    with open_console(data_dir) as console:
        incident, story = console.show_incident(ref)
    if as_json:
        print_json(incident.to_json(story))
        return
    out.print(f"incident {incident.id} ({incident.state}): {shown(incident.title)}")
    out.print(f"container {shown(incident.containerName)} image {shown(incident.imageName)} "
              f"host {shown(incident.hostname)}")  # fmt: skip
    table = Table("#", "time", "type", "attackType", "effect", "tactic", "technique", "msg")
    for number, a in enumerate(story, start=1):
        mitre = mitre_of(a.attackType)
        table.add_row(
            str(number), when(a.time), a.type, shown(a.attackType), a.effect,
            mitre.tactic_text if mitre else "-", mitre.technique_text if mitre else "-",
            shown(a.msg),
        )  # fmt: skip
    out.print(table)


@app.command("archive")
def archive_incident(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Archive an incident: what follows about the same thing opens a new one."""
    with open_console(data_dir) as console:
        incident = console.archive_incident(ref)
    out.print(f"incident {incident.id} archived")


@app.command("reopen")
def reopen_incident(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Open an archived incident again."""
    with open_console(data_dir) as console:
        incident = console.reopen_incident(ref)
    out.print(f"incident {incident.id} open")
