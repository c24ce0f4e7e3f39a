"""``garrison audits``: what Garrison saw and did."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from garrison.audit import export
from garrison.audit.record import Audit
from garrison.audit.retention import DEFAULT_MAX_AGE, DEFAULT_MAX_COUNT, Retention
from garrison.cli.defaults import DEFAULT_DATA_DIR, DEFAULT_LIMIT
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
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
)
from garrison.errors import InvalidInput
from garrison.human import ago, local_time, short_id

if TYPE_CHECKING:
    from garrison.audit.query import AuditFilter

app = typer.Typer(help="Audits: anomalies and rule violations, newest first.", no_args_is_help=True)

# The filters of `list` and `export`.
Container = Annotated[str, typer.Option(help="Container name or id prefix.")]
Image = Annotated[str, typer.Option(help="Image name or id prefix.")]
Type = Annotated[
    str,
    typer.Option(
        "--type", help="processes, network, filesystem, vulnerability, compliance, defender."
    ),
]
Effect = Annotated[str, typer.Option(help="alert, prevent, block (the gate also writes allow).")]
Since = Annotated[
    str,
    typer.Option(help="From this time on: a duration back from now (10m, 2h, 7d) or an ISO time."),
]
Until = Annotated[
    str,
    typer.Option(
        help="Before this time (itself excluded): a duration back from now or an ISO time."
    ),
]
Search = Annotated[
    str,
    typer.Option(
        help="Text in the message or the command line, in any case; taken literally (no wildcards)."
    ),
]
Rule = Annotated[str, typer.Option(help="The name of the rule that raised it, exactly.")]
Host = Annotated[str, typer.Option(help="The host name of the defender that raised it, exactly.")]
AttackType = Annotated[
    str,
    typer.Option("--attack-type", help="The attack type, exactly (e.g. unexpectedProcess)."),
]
Offset = Annotated[int, typer.Option(help="Skip this many, newest first (with --limit: one page).")]


def _query(
    *,
    container: str,
    image: str,
    type_: str,
    effect: str,
    since: str,
    until: str,
    search: str,
    rule: str,
    host: str,
    attack_type: str,
    limit: int,
    offset: int,
) -> AuditFilter:
    # Here, not above: the filter brings the policy package (lark, pydantic), not for --help.
    from garrison.audit.query import AuditFilter, parse_when  # noqa: PLC0415

    now = time.time()
    return AuditFilter(
        container=container,
        image=image,
        type=type_,
        effect=effect,
        since=parse_when(since, now, "--since") if since else None,
        until=parse_when(until, now, "--until") if until else None,
        search=search,
        rule=rule,
        host=host,
        attack_type=attack_type,
        limit=limit,
        offset=offset,
    )


# What a container ran or wrote (msg, command) is anything at all: free text, shown escaped.
DEFAULT: list[Column[Audit]] = [
    key("time", lambda a: ago(a.time)),
    key("container", lambda a: shown(a.containerName or "-")),
    key("effect", lambda a: shown(a.effect)),
    number("count", lambda a: a.count),
    free("message", lambda a: shown(a.msg)),
]
WIDE: list[Column[Audit]] = [
    number("id", lambda a: a.id),
    key("time", lambda a: local_time(a.time)),
    DEFAULT[1],
    key("container id", lambda a: short_id(a.containerId)),
    key("image", lambda a: shown(a.imageName or "-")),
    key("type", lambda a: shown(a.type)),
    key("attack type", lambda a: shown(a.attackType)),
    DEFAULT[2],
    key("rule", lambda a: shown(a.ruleName or "-")),
    key("host", lambda a: shown(a.hostname)),
    DEFAULT[3],
    DEFAULT[4],
    free("command", lambda a: shown(a.command or "-")),
]


@app.command("list")
def list_audits(
    container: Container = "",
    image: Image = "",
    type_: Type = "",
    effect: Effect = "",
    since: Since = "",
    until: Until = "",
    search: Search = "",
    rule: Rule = "",
    host: Host = "",
    attack_type: AttackType = "",
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = DEFAULT_LIMIT,
    offset: Offset = 0,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
    output: OutputOption = None,
) -> None:
    """List audits, filtered, newest first."""
    from garrison.audit.query import AuditFilter  # noqa: PLC0415 - as in _query

    chosen = output_of(output, as_json)
    query = _query(
        container=container, image=image, type_=type_, effect=effect, since=since,
        until=until, search=search, rule=rule, host=host, attack_type=attack_type,
        limit=limit, offset=offset,
    )  # fmt: skip
    with open_console(data_dir) as console:
        audits = console.list_audits(query)
    if chosen in (Output.JSON, Output.YAML):
        emit([a.to_json() for a in audits], chosen)
        return
    unfiltered = query == AuditFilter(limit=query.limit)
    empty = "No audits." if unfiltered else "No audits match these options."
    wide = chosen is Output.WIDE
    print_table(WIDE if wide else DEFAULT, audits, empty, fit=not wide)


@app.command("export")
def export_audits(
    container: Container = "",
    image: Image = "",
    type_: Type = "",
    effect: Effect = "",
    since: Since = "",
    until: Until = "",
    search: Search = "",
    rule: Rule = "",
    host: Host = "",
    attack_type: AttackType = "",
    limit: Annotated[int, typer.Option(help="At most this many (0, the default: all).")] = 0,
    offset: Offset = 0,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="jsonl (one JSON object per line, as --json lists them) or csv."
        ),
    ] = "jsonl",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (mode 0600; it appears only once complete) rather than "
            "standard output (-).",
        ),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Export audits, filtered, newest first, streamed: all of them unless --limit says."""
    query = _query(
        container=container, image=image, type_=type_, effect=effect, since=since,
        until=until, search=search, rule=rule, host=host, attack_type=attack_type,
        limit=limit, offset=offset,
    )  # fmt: skip
    with open_console(data_dir) as console:
        lines = console.export_audits(query, fmt)
        if output is None or str(output) == "-":
            _to_stdout(lines)
            return
        written = export.write_file(output, lines)
    count = written - (fmt == "csv")  # the header line
    out.print(f"{count:,} audits written to {shown(output)}", highlight=False)


def _to_stdout(lines: Iterable[str]) -> None:
    stream = export.text_stream(sys.stdout.buffer)
    try:
        for line in lines:
            stream.write(line)
        stream.flush()
    except BrokenPipeError:
        # The reader left (`| head`): stop there, and keep Python's exit flush from failing
        # again (https://docs.python.org/3/library/signal.html#note-on-sigpipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(1) from None
    finally:
        stream.detach()


@app.command("prune")
def prune_audits(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            envvar="GARRISON_AUDIT_RETENTION",
            help="Delete audits last seen longer ago than this: 90, 30s, 15m, 1h, 7d.",
        ),
    ] = f"{DEFAULT_MAX_AGE / 86400:.0f}d",
    keep: Annotated[
        int,
        typer.Option(
            "--keep",
            envvar="GARRISON_AUDIT_MAX_COUNT",
            help="Then keep the newest N at most, deleting the oldest (0: no cap).",
        ),
    ] = DEFAULT_MAX_COUNT,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """Delete old audits now, as `garrison run` does hourly.

    Audits not yet forwarded to an alert channel, and those blocked containers were stopped
    for, are kept whatever the options say."""
    from garrison.config import parse_duration  # noqa: PLC0415 - pydantic's settings: not for --help

    try:
        retention = Retention(parse_duration(older_than), keep)
    except ValueError as exc:
        raise InvalidInput(f"--older-than: {exc}") from exc
    now = time.time()
    with open_console(data_dir) as console:
        deleted = console.prune_audits(now, retention)
    if as_json:
        cutoff = dt.datetime.fromtimestamp(retention.cutoff(now), tz=dt.UTC)
        before = cutoff.isoformat(timespec="seconds").replace("+00:00", "Z")  # as audits' time
        print_json({"deleted": deleted, "before": before, "keep": keep})
        return
    cap = f" or beyond the newest {keep:,}" if keep else ""
    out.print(
        f"{deleted:,} audits deleted (last seen before {when(retention.cutoff(now))} UTC{cap}).",
        highlight=False,
    )
