"""``garrison alerts``: where audits are forwarded (channels) and what waits to go (outbox)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown
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
from garrison.human import ago, duration, local_time

if TYPE_CHECKING:
    from garrison.alerts.profiles import Profile
    from garrison.store.base import ChannelRecord, Delivery

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


def redacted(url: str) -> str:
    """The URL with its secrets hidden (garrison.alerts.channel, imported only when a URL is
    shown: not for --help)."""
    from garrison.alerts.channel import redacted as hide  # noqa: PLC0415

    return hide(url)


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


CHANNELS: list[Column[ChannelRecord]] = [
    key("name", lambda c: shown(c.name)),
    free("url", lambda c: shown(redacted(c.url))),
    key("added", lambda c: ago(c.created)),
]


@channels.command("list")
def list_channels(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """The channels, their URLs with secrets hidden."""
    with open_console(data_dir) as console:
        found = console.list_channels()
    if as_json:
        print_json([{"name": c.name, "url": redacted(c.url), "created": c.created} for c in found])
        return
    empty = "No alert channels: audits are stored and shown, not forwarded."
    print_table(CHANNELS, found, empty)


@channels.command("test")
def send_test(name: Name, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Send a test alert to the channel now, and say whether it went."""
    with open_console(data_dir) as console:
        console.test_channel(name, socket.gethostname())
    out.print(f"a test alert went to {shown(name)}")


def _kind(d: Delivery) -> str:
    return f"summary (+{d.folded})" if d.folded else "first"


def _when(d: Delivery) -> str:
    """When it was sent, or when it is tried next."""
    if d.state == "pending":
        wait = d.next_try - time.time()
        return f"next in {duration(wait)}" if wait >= 1 else "due now"
    return f"sent {ago(d.sent)}" if d.sent else "-"


OUTBOX: list[Column[Delivery]] = [
    number("id", lambda d: d.id),
    key("channel", lambda d: shown(d.channel)),
    number("audit", lambda d: d.audit.id),
    key("state", lambda d: d.state),
    number("tries", lambda d: d.attempts),
    key("when", _when),
    free("error", lambda d: shown(d.error or "-")),
]
OUTBOX_WIDE: list[Column[Delivery]] = [
    *OUTBOX[:3],
    key("attack type", lambda d: shown(d.audit.attackType)),
    key("kind", _kind),
    *OUTBOX[3:5],
    key("created", lambda d: local_time(d.created)),
    key("next try", lambda d: local_time(d.next_try) if d.state == "pending" else "-"),
    key("sent", lambda d: local_time(d.sent)),
    OUTBOX[6],
]


@app.command("outbox")
def outbox(
    state: Annotated[str, typer.Option(help="pending, sent or skipped (default: all).")] = "",
    limit: Annotated[int, typer.Option(help="At most this many (0: all).")] = 100,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
    output: OutputOption = None,
) -> None:
    """What was forwarded to each channel and what waits (retried with backoff)."""
    chosen = output_of(output, as_json)
    with open_console(data_dir) as console:
        found = console.list_deliveries(state, limit)
    if chosen in (Output.JSON, Output.YAML):
        emit([d.to_json() for d in found], chosen)
        return
    empty = f"No {state} deliveries." if state else "The outbox is empty."
    wide = chosen is Output.WIDE
    print_table(OUTBOX_WIDE if wide else OUTBOX, found, empty, fit=not wide)


@profiles.command("apply")
def apply_profiles(
    file: Annotated[Path, typer.Option("-f", "--file", help="YAML or JSON profiles.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Put these profiles in force (they replace the ones before; a running defender follows
    within a second)."""
    # Here, not above: pydantic and the policy package are not for --help (issue 17).
    from garrison.alerts.profiles import load_profiles  # noqa: PLC0415
    from garrison.policy.documents import DocumentError, read_document  # noqa: PLC0415

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
    import yaml  # noqa: PLC0415 - only this command needs it

    with open_console(data_dir) as console:
        doc = console.alert_profiles().model_dump(mode="json")
    print(yaml.safe_dump(doc, sort_keys=False), end="")


PROFILES: list[Column[Profile]] = [
    key("name", lambda p: shown(p.name)),
    free("channels", lambda p: shown(", ".join(p.channels))),
    free("types", lambda p: shown(", ".join(p.types) or "any")),
    free("attack types", lambda p: shown(", ".join(p.attackTypes) or "any")),
    key("effects", lambda p: shown(", ".join(p.effects))),
    key("aggregation", lambda p: shown(p.aggregation)),
]


@profiles.command("list")
def list_profiles(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """The profiles in force, one line each."""
    from garrison.alerts.profiles import DEFAULT_PERIOD  # noqa: PLC0415 - pydantic: not for --help

    with open_console(data_dir) as console:
        found = console.alert_profiles().profiles
    if as_json:
        print_json([p.model_dump(mode="json") for p in found])
        return
    empty = (
        f"No alert profiles: every channel receives every audit ({DEFAULT_PERIOD:.0f} s "
        "aggregation)."
    )
    print_table(PROFILES, found, empty)
