"""``garrison containers``: containers Garrison blocked, and letting them run again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from garrison.audit.record import Audit
from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import (
    AsJson,
    ContainerdAddress,
    ContainerdNamespace,
    DataDir,
    EngineOfContainer,
    RuntimeOption,
    open_console,
    out,
    runtime_of_container,
    shown,
)
from garrison.cli.render import (
    Column,
    Output,
    OutputOption,
    emit,
    free,
    key,
    output_of,
    print_table,
)
from garrison.human import ago, local_time, short_id

if TYPE_CHECKING:
    from garrison.store.base import BlockedContainer

    Blocked = tuple[BlockedContainer, Audit | None]

app = typer.Typer(help="Containers Garrison blocked.", no_args_is_help=True)


def _why(row: Blocked) -> str:
    """The audit's message; for a block not done yet, what keeps it from being done first."""
    record, audit = row
    msg = shown(audit.msg) if audit else "-"
    return msg if record.state == "done" else f"not done yet: {shown(record.reason)}; {msg}"


def _forensics(row: Blocked) -> str:
    record = row[0]
    return f"{record.bundle} ({record.capture})" if record.bundle else "-"


DEFAULT: list[Column[Blocked]] = [
    key("container", lambda r: shown(r[0].name)),
    key("container id", lambda r: short_id(r[0].container_id)),
    key("blocked", lambda r: ago(r[0].time)),
    key("state", lambda r: shown(r[0].state)),
    free("why", _why),
]
WIDE: list[Column[Blocked]] = [
    *DEFAULT[:2],
    key("image", lambda r: shown(r[0].image)),
    key("blocked", lambda r: local_time(r[0].time)),
    DEFAULT[3],
    key("restart policy", lambda r: shown(r[0].restart_policy.name)),
    key("forensics", _forensics),
    DEFAULT[4],
]


@app.command()
def blocked(
    data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False, output: OutputOption = None
) -> None:
    """List blocked containers with the audit that blocked them. A block still under way is
    *pending*, with what keeps it from being done (e.g. Docker refusing the kill)."""
    chosen = output_of(output, as_json)
    with open_console(data_dir) as console:
        rows = console.blocked_with_audits()
    if chosen in (Output.JSON, Output.YAML):
        emit([{**b.to_json(), "audit": a.to_json() if a else None} for b, a in rows], chosen)
        return
    empty = "No blocked containers."
    wide = chosen is Output.WIDE
    print_table(WIDE if wide else DEFAULT, rows, empty, fit=not wide)


@app.command()
def unblock(
    container: Annotated[str, typer.Argument(help="Container name or id prefix.")],
    docker_host: EngineOfContainer = None,
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Restore the container's original restart policy and clear the block.

    It does not start the container: `docker start` it when you are ready.
    """
    engine = runtime_of_container(runtime, docker_host, containerd_address, containerd_namespace)
    try:
        with open_console(data_dir) as console:
            record = console.unblock(engine, container)
    finally:
        engine.close()
    policy = shown(repr(record.restart_policy.name))
    if record.host:  # another host's container: its defender restores it (docs/fleet.md)
        host = shown(record.host)
        out.print(f"{shown(record.name)} unblocked; {host} restores restart policy {policy}.")
    else:
        out.print(f"{shown(record.name)} unblocked; restart policy {policy} restored.")
