"""``garrison hosts``: the hosts that report to this console — their enrolment tokens (one
host's, or a DaemonSet's nodes'), their list, their revocation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from garrison import human
from garrison.cli import render
from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import AsJson, DataDir, open_local_console, out, print_json, shown, when

if TYPE_CHECKING:  # the store and the fleet load when a command runs, not for --help
    from garrison.fleet.enroll import TokenRecord
    from garrison.store.base import HostRecord

app = typer.Typer(
    help="Hosts reporting to this console (`garrison defender`): enrolment tokens, list, revoke.",
    no_args_is_help=True,
)
tokens = typer.Typer(help="Enrolment tokens for new hosts.", no_args_is_help=True)
app.add_typer(tokens, name="token")


@tokens.command("create")
def create_token(
    ttl: Annotated[
        str, typer.Option(help="How long it may be used (30m, 24h; at most 30d).")
    ] = "1h",
    uses: Annotated[
        int,
        typer.Option(
            "--uses", help="How many hosts may enrol with it (a DaemonSet's nodes share one)."
        ),
    ] = 1,
    console_url: Annotated[
        str,
        typer.Option(
            "--console",
            help="The defender listener's URL as hosts reach it, for the command printed.",
        ),
    ] = "https://CONSOLE:8443",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """A token for one new host (or --uses N hosts), printed once with the command that
    enrols them (each with its own name)."""
    from garrison.config import parse_duration  # noqa: PLC0415
    from garrison.fleet.join import ca_digest  # noqa: PLC0415
    from garrison.fleet.server import open_ca  # noqa: PLC0415
    from garrison.fleet.service import FleetService  # noqa: PLC0415

    with open_local_console(data_dir) as console:
        ca = open_ca(console.store, data_dir)
        service = FleetService(console.store, ca)
        text, record = service.make_enrol_token(parse_duration(ttl), uses)
    digest = ca_digest(ca.cert_pem)
    if as_json:
        print_json({"token": text, "id": record.id, "expires": record.expires,
                    "maxUses": record.max_uses, "consoleCaSha256": digest})  # fmt: skip
        return
    times = "one use" if uses == 1 else f"{uses} hosts"
    print(f"enrolment token {record.id} ({times}, until {when(record.expires)} UTC):")
    print(f"  {text}")
    print("on the new host:")
    print(f"  garrison defender --console {console_url} --enrol-token {text} "
          f"--console-ca-sha256 {digest}")  # fmt: skip


@tokens.command("list")
def list_tokens(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Enrolment tokens (never their secret): their uses of the most, when last used, expiry."""
    with open_local_console(data_dir) as console:
        found = console.store.list_enrol_tokens()
    if as_json:
        print_json([{"id": t.id, "created": t.created, "expires": t.expires, "used": t.used,
                     "uses": t.uses, "maxUses": t.max_uses} for t in found])  # fmt: skip
        return
    columns: list[render.Column[TokenRecord]] = [
        render.key("id", lambda t: t.id),
        render.key("made", lambda t: human.ago(t.created)),
        render.key("expires", lambda t: when(t.expires)),
        render.key("uses", lambda t: f"{t.uses}/{t.max_uses}"),
        render.key("last used", lambda t: when(t.used)),
    ]
    render.print_table(columns, found, "No enrolment tokens: `garrison hosts token create`.")


@app.command("list")
def list_hosts(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """The hosts enrolled: when, last heard from, revoked."""
    with open_local_console(data_dir) as console:
        found = console.store.list_hosts()
    if as_json:
        print_json([h.to_json() for h in found])
        return
    columns: list[render.Column[HostRecord]] = [
        render.key("host", lambda h: shown(h.name)),
        render.key("enrolled", lambda h: human.ago(h.enrolled)),
        render.key("last seen", lambda h: _ago(h.last_seen)),
        render.key("state", lambda h: "revoked" if h.revoked is not None else "enrolled"),
    ]
    render.print_table(columns, found, "No hosts: enrol one with `garrison hosts token create`.")


def _ago(epoch: float | None) -> str:
    return "-" if not epoch else human.ago(epoch)


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The host's name.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Refuse the host from now on: its certificate no longer opens the console, whichever
    replica it reaches (enrol it again with a one-use token to let it back)."""
    from garrison.errors import NotFound  # noqa: PLC0415

    with open_local_console(data_dir) as console:
        if not console.revoke_host(name):
            raise NotFound(f"host {name[:64]!r}: no such host")
    out.print(f"host {shown(name)} revoked")
