"""Options shared by several commands, and output helpers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console as RichConsole

from garrison.console import Console

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


def open_console(data_dir: Path) -> Console:
    return Console.open(data_dir)


def print_json(data: Any) -> None:
    """JSON for scripts: plain print, no colours or wrapping."""
    print(json.dumps(data, indent=2, sort_keys=False, default=str))


def when(epoch: float | int | None) -> str:
    if not epoch:
        return "-"
    return dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
