"""``garrison containers``: containers Garrison blocked, and letting them run again."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
from garrison.config import DEFAULT_DATA_DIR
from garrison.runtime.docker import DockerRuntime

app = typer.Typer(help="Containers Garrison blocked.", no_args_is_help=True)

DockerHost = Annotated[
    str | None,
    typer.Option("--docker-host", envvar="DOCKER_HOST", help="Docker engine of the container."),
]


@app.command()
def blocked(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """List blocked containers with the audit that blocked them. A block still under way is
    *pending*, with what keeps it from being done (e.g. Docker refusing the kill)."""
    with open_console(data_dir) as console:
        rows = console.blocked_with_audits()
    if as_json:
        print_json([{**b.to_json(), "audit": a.to_json() if a else None} for b, a in rows])
        return
    table = Table(
        "container", "id", "image", "blocked at", "state", "restart policy", "forensics", "why"
    )
    for record, audit in rows:
        state = record.state if record.state == "done" else f"pending: {record.reason}"
        bundle = f"{record.bundle} ({record.capture})" if record.bundle else "-"
        table.add_row(
            shown(record.name), record.container_id[:12], shown(record.image), when(record.time),
            shown(state), shown(record.restart_policy.name), bundle,
            shown(audit.msg) if audit else "-",
        )  # fmt: skip
    out.print(table)


@app.command()
def unblock(
    container: Annotated[str, typer.Argument(help="Container name or id prefix.")],
    docker_host: DockerHost = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Restore the container's original restart policy and clear the block.

    It does not start the container: `docker start` it when you are ready.
    """
    runtime = DockerRuntime(docker_host)
    try:
        with open_console(data_dir) as console:
            record = console.unblock(runtime, container)
    finally:
        runtime.close()
    policy = shown(repr(record.restart_policy.name))
    out.print(f"{shown(record.name)} unblocked; restart policy {policy} restored.")
