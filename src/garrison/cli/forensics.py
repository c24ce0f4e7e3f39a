"""``garrison forensics``: the bundles captured when containers were blocked, and new ones."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    print_json,
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
from garrison.human import local_time, short_id

if TYPE_CHECKING:
    from garrison.forensics.library import BundleInfo

app = typer.Typer(
    help="Forensics bundles: a blocked container's file system, inspect, diff, logs, process "
    "tree, what Garrison saw it do and its audits, in one .tar.gz with a manifest of SHA-256s.",
    no_args_is_help=True,
)
Ref = Annotated[
    str, typer.Argument(help="A bundle id (or a unique prefix), or a container name or id prefix.")
]


def _held(bundle: BundleInfo) -> str:
    return "complete" if bundle.complete else f"{len(bundle.missing)} missing"


DEFAULT: list[Column[BundleInfo]] = [
    key("bundle", lambda b: shown(b.id)),
    key("container", lambda b: shown(b.subject.get("containerName") or "-")),
    key("size", lambda b: _size(b.size)),
    key("held", _held),
    key("pinned", lambda b: "pinned" if b.pinned else ""),
]
WIDE: list[Column[BundleInfo]] = [
    DEFAULT[0],
    key("created", lambda b: local_time(b.created)),
    DEFAULT[1],
    key("container id", lambda b: short_id(b.subject.get("containerId"))),
    key("image", lambda b: shown(b.subject.get("imageName") or "-")),
    *DEFAULT[2:],
    free("why", lambda b: shown(b.subject.get("reason") or "-")),
]


@app.command("list")
def list_bundles(
    data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False, output: OutputOption = None
) -> None:
    """The bundles kept on this host, newest first."""
    chosen = output_of(output, as_json)
    with open_console(data_dir) as console:
        found = console.bundles().list()
    if chosen in (Output.JSON, Output.YAML):
        emit([b.to_json() for b in found], chosen)
        return
    empty = "No forensics bundles: one is captured when a block stops a container."
    wide = chosen is Output.WIDE
    print_table(WIDE if wide else DEFAULT, found, empty, fit=not wide)


@app.command("show")
def show_bundle(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """One bundle: what it is about, where it is, what it holds and what is missing."""
    with open_console(data_dir) as console:
        bundle = console.bundles().get(ref)
    if as_json:
        print_json(bundle.to_json())
        return
    subject = bundle.subject
    out.print(f"bundle {bundle.id}: {bundle.path} ({_size(bundle.size)}), {_complete(bundle)}")
    out.print(f"container {shown(subject.get('containerName', ''))} "
              f"{str(subject.get('containerId', ''))[:12]} image "
              f"{shown(subject.get('imageName', ''))}")  # fmt: skip
    out.print(f"why: {shown(subject.get('reason', '-'))}")
    out.print(f"read it: tar -xzf {bundle.path} -C DIR; garrison forensics verify {bundle.path}")


@app.command("export")
def export_bundle(
    container: Annotated[str, typer.Argument(help="Container name or id prefix.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The .tar.gz to write.")],
    docker_host: EngineOfContainer = None,
    runtime: RuntimeOption = None,
    containerd_address: ContainerdAddress = None,
    containerd_namespace: ContainerdNamespace = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Capture any container now (running or stopped) into a bundle at OUTPUT; it is not kept
    on the host. A running container is not stopped."""
    engine = runtime_of_container(runtime, docker_host, containerd_address, containerd_namespace)
    try:
        with open_console(data_dir) as console:
            manifest = console.export_bundle(engine, container, output)
    finally:
        engine.close()
    state = (
        "complete"
        if manifest.complete
        else "missing " + ", ".join(m.name for m in manifest.missing)
    )
    out.print(f"{output}: {len(manifest.members)} members, {state}")


@app.command("verify")
def verify_bundle(
    file: Annotated[Path, typer.Argument(help="A bundle (.tar.gz).")], as_json: AsJson = False
) -> None:
    """Check every member's SHA-256 against the bundle's manifest; exit 1 when one differs,
    is missing or is not in the manifest."""
    # The forensics package brings the store and the Docker SDK: not for --help.
    from garrison.forensics.verify import verify  # noqa: PLC0415

    verdict = verify(file)
    if as_json:
        manifest = verdict.manifest.to_json() if verdict.manifest else None
        print_json({"ok": verdict.ok, "problems": list(verdict.problems), "manifest": manifest})
    else:
        for problem in verdict.problems:
            out.print(shown(problem))
        members = len(verdict.manifest.members) if verdict.manifest else 0
        out.print(f"{file}: {'ok' if verdict.ok else 'NOT OK'} ({members} members checked)")
    if not verdict.ok:
        raise typer.Exit(1)


@app.command("pin")
def pin_bundle(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Keep a bundle whatever the retention says."""
    with open_console(data_dir) as console:
        bundle = console.bundles().pin(console.bundles().get(ref).id, True)
    out.print(f"bundle {bundle.id} pinned")


@app.command("unpin")
def unpin_bundle(ref: Ref, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Let retention remove a bundle again (oldest first, by total size and age)."""
    with open_console(data_dir) as console:
        bundle = console.bundles().pin(console.bundles().get(ref).id, False)
    out.print(f"bundle {bundle.id} unpinned")


def _complete(bundle: BundleInfo) -> str:
    return "complete" if bundle.complete else "missing " + ", ".join(bundle.missing)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
