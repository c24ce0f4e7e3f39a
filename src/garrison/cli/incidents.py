"""``garrison incidents``: audits of one container correlated into stories."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from garrison.audit.mitre import Mitre, mitre_of
from garrison.audit.record import Audit
from garrison.cli.defaults import DEFAULT_DATA_DIR, DEFAULT_LIMIT
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown
from garrison.cli.render import (
    Column,
    Output,
    OutputOption,
    emit,
    free,
    key,
    number,
    output_of,
    print_table,
    say,
)
from garrison.human import ago, local_time, short_id

if TYPE_CHECKING:
    from garrison.incidents import Incident

app = typer.Typer(
    help="Incidents: audits of one container that tell one story (a binary written then run, "
    "an unknown process that connected out, a shell started by a server, a scan, a miner).",
    no_args_is_help=True,
)
Ref = Annotated[str, typer.Argument(help="The incident's id (as listed).")]


DEFAULT: list[Column[Incident]] = [
    number("id", lambda i: i.id),
    key("last", lambda i: ago(i.lastTime)),
    key("state", lambda i: i.state),
    key("container", lambda i: shown(i.containerName or "-")),
    number("audits", lambda i: len(i.auditIds)),
    free("title", lambda i: shown(i.title)),
]
WIDE: list[Column[Incident]] = [
    DEFAULT[0],
    key("first", lambda i: local_time(i.firstTime)),
    key("last", lambda i: local_time(i.lastTime)),
    *DEFAULT[2:4],
    key("container id", lambda i: short_id(i.containerId)),
    key("image", lambda i: shown(i.imageName or "-")),
    key("host", lambda i: shown(i.hostname)),
    key("kind", lambda i: i.kind),
    *DEFAULT[4:],
]


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
    output: OutputOption = None,
) -> None:
    """List incidents, the most recently active first."""
    # The incidents package brings the policy package (lark, pydantic): not for --help.
    from garrison.incidents import IncidentFilter  # noqa: PLC0415

    chosen = output_of(output, as_json)
    query = IncidentFilter(state=state, container=container, kind=kind, limit=limit)
    with open_console(data_dir) as console:
        found = console.list_incidents(query)
    if chosen in (Output.JSON, Output.YAML):
        emit([i.to_json() for i in found], chosen)
        return
    unfiltered = query == IncidentFilter(limit=limit)
    empty = "No incidents." if unfiltered else "No incidents match these options."
    wide = chosen is Output.WIDE
    print_table(WIDE if wide else DEFAULT, found, empty, fit=not wide)


Step = tuple[int, Audit]  # the audit's place in the story, and the audit


def _mitre(text: Callable[[Mitre], str]) -> Callable[[Step], str]:
    def cell(step: Step) -> str:
        mitre = mitre_of(step[1].attackType)
        return text(mitre) if mitre else "-"

    return cell


STORY: list[Column[Step]] = [
    number("#", lambda s: s[0]),
    key("time", lambda s: ago(s[1].time)),
    key("effect", lambda s: shown(s[1].effect)),
    free("message", lambda s: shown(s[1].msg)),
    free("att&ck", _mitre(lambda m: f"{m.tactic_text}: {m.technique_text}")),
]


@app.command("show")
def show_incident(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """One incident and its story: each audit in order, with its ATT&CK tactic and technique."""
    with open_console(data_dir) as console:
        incident, story = console.show_incident(ref)
    if as_json:
        print_json(incident.to_json(story))
        return
    say(f"incident {incident.id} ({incident.state}): {shown(incident.title)}")
    say(f"container {shown(incident.containerName)} image {shown(incident.imageName)} "
        f"host {shown(incident.hostname)}")  # fmt: skip
    print_table(STORY, list(enumerate(story, start=1)), "No audits left in this incident.")


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
