"""``garrison engine``: the private development Docker engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from garrison.cli.defaults import DEFAULT_ENGINE_DIR

app = typer.Typer(
    help="A private Docker engine for development, tests and demos (never the host's own).",
    no_args_is_help=True,
)
out = Console(soft_wrap=True)

StateDir = Annotated[
    Path,
    typer.Option(
        "--state-dir",
        envvar="GARRISON_ENGINE_DIR",
        help="Folder holding the engine's data root, exec root, pid file and socket.",
    ),
]


@app.command()
def up(
    state_dir: StateDir = DEFAULT_ENGINE_DIR,
    images: Annotated[bool, typer.Option(help="Also build the test images.")] = True,
) -> None:
    """Start the private engine (or reuse the one running there) and leave it up."""
    # The engine's module brings the Docker SDK: imported when used, never for --help.
    from garrison.devengine import EngineConfig, PrivateEngine, ensure_all, ensure_packages  # noqa: PLC0415
    from garrison.devengine.images import cache_dir_from_env  # noqa: PLC0415

    ensure_packages()
    engine = PrivateEngine(EngineConfig(state_dir=state_dir, keep=True)).start()
    verb = "reused" if engine.reused else "started"
    out.print(f"engine {verb}: pid {engine.pid()}, DOCKER_HOST={engine.base_url}")
    if images:
        client = engine.client()
        for name, image_id in ensure_all(client, cache_dir_from_env()).items():
            out.print(f"image {name} {image_id[7:19]}")
        client.close()


@app.command()
def down(state_dir: StateDir = DEFAULT_ENGINE_DIR) -> None:
    """Stop the private engine by its pid, with everything it started."""
    from garrison.devengine import EngineConfig, PrivateEngine  # noqa: PLC0415 - as in up

    engine = PrivateEngine(EngineConfig(state_dir=state_dir))
    if engine.pid() is None:
        out.print("no engine running there")
        return
    pids = engine.stop()
    out.print(f"engine stopped ({len(pids)} processes)")


@app.command()
def status(state_dir: StateDir = DEFAULT_ENGINE_DIR) -> None:
    """Say whether the private engine runs and answers."""
    from garrison.devengine import EngineConfig, PrivateEngine  # noqa: PLC0415 - as in up

    engine = PrivateEngine(EngineConfig(state_dir=state_dir))
    pid = engine.pid()
    state = "answering" if pid and engine.answers() else ("not answering" if pid else "stopped")
    out.print(f"engine {state}; pid {pid or '-'}; DOCKER_HOST={engine.base_url}")
    if not pid:
        raise typer.Exit(1)
