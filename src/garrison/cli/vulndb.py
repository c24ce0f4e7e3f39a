"""``garrison vulndb``: import, update and inspect the OSV vulnerability database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from garrison.cli.defaults import DEFAULT_OSV_TIMEOUT, DEFAULT_OSV_URL
from garrison.cli.options import shown
from garrison.cli.render import Column, key, number, say, table

if TYPE_CHECKING:
    from garrison.scan.vulndb import ImportReport, VulnDB

DEFAULT_DATA_DIR = Path("/var/lib/garrison")
SHOWN_PROBLEMS = 10

app = typer.Typer(
    help="The vulnerability database (OSV records) that image scans match against.",
    no_args_is_help=True,
)
out = Console(soft_wrap=True, highlight=False)

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="GARRISON_DATA_DIR",
        help="Garrison's data folder; the database is vulndb.sqlite in it.",
    ),
]


def _vulndb(data_dir: Path) -> VulnDB:
    # Imported when used: the database brings univers and SQLAlchemy, not for --help.
    from garrison.scan.vulndb import VulnDB  # noqa: PLC0415

    return VulnDB.in_data_dir(data_dir)


def _print_report(report: ImportReport) -> None:
    out.print(
        f"{shown(report.source)}: {report.imported} imported, {report.replaced} replaced, "
        f"{report.unchanged} unchanged, {report.withdrawn} withdrawn (ignored), "
        f"{report.invalid} invalid (skipped), {report.bad_ranges} ranges dropped"
    )
    for problem in report.problems[:SHOWN_PROBLEMS]:
        out.print(f"  skipped {shown(problem)}")  # names and reasons from the archive
    hidden = report.invalid + report.bad_ranges - SHOWN_PROBLEMS
    if hidden > 0:
        out.print(f"  … and {hidden} more")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="An OSV zip (like all.zip) or a folder of .json.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Import OSV records from a zip, a .json file or a folder."""
    _print_report(_vulndb(data_dir).import_path(path))


@app.command()
def update(
    url: Annotated[str, typer.Option(help="Base URL laid out as {url}/{ecosystem}/all.zip.")] = (
        DEFAULT_OSV_URL
    ),
    ecosystem: Annotated[
        list[str] | None,
        typer.Option("--ecosystem", "-e", help="An OSV ecosystem to fetch; repeat for several."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds without data before giving up.")] = (
        DEFAULT_OSV_TIMEOUT
    ),
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Download each ecosystem's all.zip and import it."""
    from garrison.scan.vulndb import DEFAULT_ECOSYSTEMS  # noqa: PLC0415 - as in _vulndb

    ecosystems = ecosystem or list(DEFAULT_ECOSYSTEMS)
    _print_report(_vulndb(data_dir).update(url, ecosystems, timeout))


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Show how many advisories each ecosystem has and when the data was last updated."""
    info = _vulndb(data_dir).status()
    if as_json:
        out.print_json(json.dumps(info))
        return
    ecosystems = sorted(info["ecosystems"].items())
    if ecosystems:
        out.print(table(ECOSYSTEMS, [(name, count, info["updates"]) for name, count in ecosystems]))
    else:
        out.print("No advisories yet: `garrison vulndb import` or `update` brings them.")
    last_update, last_import = info["last_update"] or "never", info["last_import"] or "never"
    say(
        f"{info['advisories']} advisories; last update {last_update}, last import "
        f"{last_import}; database {shown(info['path'])}"
    )


Ecosystem = tuple[str, int, dict[str, Any]]
ECOSYSTEMS: list[Column[Ecosystem]] = [
    key("ecosystem", lambda e: shown(e[0])),
    number("advisories", lambda e: e[1]),
    key("updated", lambda e: shown(e[2].get(e[0], {}).get("at", "-"))),
]
