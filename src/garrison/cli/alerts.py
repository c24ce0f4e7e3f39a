"""``garrison alerts``: where audits are forwarded (channels) and what waits to go (outbox)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from garrison.alerts.channel import redacted
from garrison.alerts.profiles import DEFAULT_PERIOD, load_profiles
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown, when
from garrison.config import DEFAULT_DATA_DIR
from garrison.errors import InvalidInput
from garrison.policy.documents import DocumentError, read_document
from garrison.store.base import Delivery

app = typer.Typer(help="Alerts: audits forwarded to channels.", no_args_is_help=True)
channels = typer.Typer(
    help="Alert channels: email, Slack, webhooks (apprise URLs), syslog, JSON lines.",
    no_args_is_help=True,
)
app.add_typer(channels, name="channels")
profiles = typer.Typer(
    help="Alert profiles: which audits go to which channels, and their aggregation period.",
    no_args_is_help=True,
)
app.add_typer(profiles, name="profiles")

Name = Annotated[str, typer.Argument(help="The channel's name (letters, digits, . _ -).")]


@channels.command("add")
def add(
    name: Name,
    url: Annotated[
        str,
        typer.Argument(
            help="mailto://, slack://, json://, msteams://… (any apprise URL), "
            "syslog://HOST:PORT, syslog+tcp://HOST:PORT, syslog+unix:///PATH, "
            "jsonl:///PATH or jsonl://- (stdout)."
        ),
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Add a channel: every audit stored from now on is forwarded to it."""
    with open_console(data_dir) as console:
        record = console.add_channel(name, url)
    out.print(f"channel {shown(record.name)} added: {shown(redacted(record.url))}")


@channels.command("remove")
def remove(name: Name, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Remove a channel, with what was waiting to be sent to it."""
    with open_console(data_dir) as console:
        if not console.remove_channel(name):
            raise InvalidInput(f"channel name {name[:64]!r}: no such channel")
    out.print(f"channel {shown(name)} removed")


@channels.command("list")
def list_channels(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """The channels, their URLs with secrets hidden."""
    with open_console(data_dir) as console:
        found = console.list_channels()
    if as_json:
        print_json([{"name": c.name, "url": redacted(c.url), "created": c.created} for c in found])
        return
    if not found:
        out.print("no channels: audits are stored and shown, not forwarded")
        return
    table = Table("name", "url", "added")
    for c in found:
        table.add_row(shown(c.name), shown(redacted(c.url)), when(c.created))
    out.print(table)


@channels.command("test")
def send_test(name: Name, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Send a test alert to the channel now, and say whether it went."""
    with open_console(data_dir) as console:
        console.test_channel(name, socket.gethostname())
    out.print(f"a test alert went to {shown(name)}")


@app.command("outbox")
def outbox(
    state: Annotated[str, typer.Option(help="pending, sent or skipped (default: all).")] = "",
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 100,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """What was forwarded to each channel and what waits (retried with backoff)."""
    with open_console(data_dir) as console:
        found = console.list_deliveries(state, limit)
    if as_json:
        print_json([_json(d) for d in found])
        return
    if not found:
        out.print("the outbox is empty")
        return
    columns = ("id", "channel", "audit", "kind", "state", "attempts", "next try", "sent", "error")
    table = Table(*columns)
    for d in found:
        kind = f"summary (+{d.folded})" if d.folded else "first"
        table.add_row(
            str(d.id), shown(d.channel), f"{d.audit.id} {shown(d.audit.attackType)}", kind, d.state,
            str(d.attempts), when(d.next_try) if d.state == "pending" else "-", when(d.sent),
            shown(d.error or "-"),
        )  # fmt: skip
    out.print(table)


def _json(d: Delivery) -> dict[str, object]:
    return {
        "id": d.id, "channel": d.channel, "auditId": d.audit.id, "folded": d.folded,
        "state": d.state,
        "attempts": d.attempts, "nextTry": d.next_try, "created": d.created, "sent": d.sent,
        "error": d.error, "audit": d.audit.to_json(),
    }  # fmt: skip


@profiles.command("apply")
def apply_profiles(
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML or JSON profiles.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Put these profiles in force (they replace the ones before; a running defender follows
    within a second)."""
    try:
        text = read_document(file)
    except DocumentError as exc:
        raise InvalidInput(f"{file}: {exc.problem}") from None
    loaded = load_profiles(text, str(file))
    with open_console(data_dir) as console:
        console.apply_alert_profiles(loaded)
    out.print(f"{len(loaded.profiles)} alert profile(s) in force")


@profiles.command("export")
def export_profiles(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """The profiles in force, as YAML (``apply -f`` takes it back)."""
    with open_console(data_dir) as console:
        doc = console.alert_profiles().model_dump(mode="json")
    print(yaml.safe_dump(doc, sort_keys=False), end="")


@profiles.command("list")
def list_profiles(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """The profiles in force, one line each."""
    with open_console(data_dir) as console:
        found = console.alert_profiles().profiles
    if as_json:
        print_json([p.model_dump(mode="json") for p in found])
        return
    if not found:
        out.print(f"no alert profiles: every channel receives every audit ({DEFAULT_PERIOD:.0f} s "
                  "aggregation)")  # fmt: skip
        return
    table = Table("name", "channels", "types", "attack types", "effects", "aggregation")
    for p in found:
        table.add_row(
            shown(p.name), shown(", ".join(p.channels)), shown(", ".join(p.types) or "any"),
            shown(", ".join(p.attackTypes) or "any"), shown(", ".join(p.effects)),
            shown(p.aggregation),
        )  # fmt: skip
    out.print(table)
