"""``garrison models``: the learned runtime models, one per image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer

from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown
from garrison.cli.render import (
    Column,
    Output,
    OutputOption,
    emit,
    key,
    number,
    output_of,
    print_table,
)
from garrison.errors import InvalidInput
from garrison.human import duration, local_time, short_id

app = typer.Typer(
    help="Runtime models: what the containers of each image normally do.", no_args_is_help=True
)
Ref = Annotated[str, typer.Argument(help="Image name, image id or profile id (or a prefix).")]


EMPTY = "No models yet: a model starts when a container of an image runs."
Model = dict[str, Any]


def _learned(model: Model) -> str:
    """``30s of 1h`` while learning, ``30s (manual)`` until learn-stop, else ``1h``."""
    learned = duration(model.get("learnedSeconds"))
    if model.get("state") != "learning":
        return learned
    target = model.get("learningTarget")
    return f"{learned} (manual)" if target is None else f"{learned} of {duration(target)}"


DEFAULT: list[Column[Model]] = [
    key("image", lambda m: shown(m.get("imageName") or "-")),
    key("image id", lambda m: short_id(m.get("imageId"))),
    key("state", lambda m: shown(m.get("state"))),
    key("learned", _learned),
    number("running", lambda m: m.get("runningContainers", 0)),
]
WIDE: list[Column[Model]] = [
    key("profile", lambda m: shown(m.get("profileId"))),
    *DEFAULT,
    number("processes", lambda m: m.get("processes", 0)),
    number("listening", lambda m: m.get("listeningPorts", 0)),
    number("outbound", lambda m: m.get("outboundPorts", 0)),
    number("paths", lambda m: m.get("writtenPaths", 0)),
    number("hosts", lambda m: m.get("hostCount", 0)),
    key("created", lambda m: local_time(m.get("created"))),
]


@app.command("list")
def list_models(
    data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False, output: OutputOption = None
) -> None:
    """List the models with their state and size."""
    chosen = output_of(output, as_json)
    with open_console(data_dir) as console:
        models = console.list_models()
    if chosen in (Output.JSON, Output.YAML):
        emit(models, chosen)
        return
    wide = chosen is Output.WIDE
    print_table(WIDE if wide else DEFAULT, models, EMPTY, fit=not wide)


@app.command()
def show(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Show one model whole (JSON), with the hosts that saved it."""
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
    from garrison.config import parse_duration  # noqa: PLC0415 - pydantic's settings: not for --help

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
