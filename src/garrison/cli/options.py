"""Options shared by several commands, and output helpers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console as RichConsole
from rich.markup import escape

from garrison.console import Console
from garrison.text import escape_unsafe

out = RichConsole(soft_wrap=True)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="GARRISON_DATA_DIR",
        help="Folder of Garrison's store (garrison.db) and other data.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
EngineOfContainer = Annotated[
    str | None,
    typer.Option("--docker-host", envvar="DOCKER_HOST", help="Docker engine of the container."),
]


def open_console(data_dir: Path) -> Console:
    return Console.open(data_dir)


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
