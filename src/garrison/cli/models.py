"""``garrison models``: the learned runtime models, one per image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table

from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
from garrison.config import DEFAULT_DATA_DIR, parse_duration
from garrison.errors import InvalidInput

app = typer.Typer(
    help="Runtime models: what the containers of each image normally do.", no_args_is_help=True
)
Ref = Annotated[str, typer.Argument(help="Image name, image id or profile id (or a prefix).")]


@app.command("list")
def list_models(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """List the models with their state and size."""
    with open_console(data_dir) as console:
        models = console.list_models()
    if as_json:
        print_json(models)
        return
    table = Table(*(models[0].keys() if models else ("profileId", "imageName", "state")))
    for model in models:
        table.add_row(*(_cell(k, v) for k, v in model.items()))
    out.print(table)


def _cell(key: str, value: object) -> str:
    if isinstance(value, float) and key.lower().endswith(("at", "seen", "created")):
        return when(value)
    return "-" if value is None else shown(value)


@app.command()
def show(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Show one model whole (JSON)."""
    with open_console(data_dir) as console:
        doc = console.show_model(ref)
    print_json(doc)


@app.command()
def relearn(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Forget what was learned and learn again from scratch."""
    with open_console(data_dir) as console:
        _queued(console.relearn(ref), "relearn")


@app.command()
def extend(
    ref: Ref,
    period: Annotated[
        str, typer.Option("--period", help="How much longer to learn (90, 30m, 1h).")
    ] = "1h",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Keep what was learned and learn for longer."""
    try:
        seconds = parse_duration(period)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    with open_console(data_dir) as console:
        _queued(console.extend(ref, seconds), f"extend by {seconds:.0f} s")


@app.command("learn-start")
def learn_start(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Start manual learning: it lasts until learn-stop."""
    with open_console(data_dir) as console:
        _queued(console.learn_start(ref), "learn-start")


@app.command("learn-stop")
def learn_stop(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Stop learning now: the model turns active."""
    with open_console(data_dir) as console:
        _queued(console.learn_stop(ref), "learn-stop")


def _queued(commands: Sequence[object], what: str) -> None:
    out.print(
        f"{what}: queued for {len(commands)} model(s); the running defender applies it "
        "within a second (or at its next start)."
    )
