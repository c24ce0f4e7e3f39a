"""``garrison users``: who may use the console, with which role, and their API tokens."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from garrison import human
from garrison.cli import render
from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import AsJson, DataDir, open_local_console, out, print_json, shown, when
from garrison.errors import InvalidInput

# The accounts bring the store (SQLAlchemy) and argon2: imported by the commands that use
# them, never for --help (issue 17).
if TYPE_CHECKING:
    from garrison.auth import ApiToken, User

app = typer.Typer(
    help="Console users: admin (everything), operator (changes policy, unblocks), auditor "
    "(reads); and their API tokens.",
    no_args_is_help=True,
)
tokens = typer.Typer(
    help="API tokens, for the CLI and automation (Authorization: Bearer gt_…).",
    no_args_is_help=True,
)
app.add_typer(tokens, name="token")

Name = Annotated[str, typer.Argument(help="The user's name.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (scripts), not a prompt.",
    ),
]


@app.command("list")
def list_users(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """The users, their roles, and whether they are disabled."""
    with open_local_console(data_dir) as console:
        found = console.accounts().users()
    if as_json:
        print_json([u.to_json() for u in found])
        return
    columns: list[render.Column[User]] = [
        render.key("name", lambda u: shown(u.name)),
        render.key("role", lambda u: u.role),
        render.key("state", lambda u: "disabled" if u.disabled else "enabled"),
        render.key("added", lambda u: human.ago(u.created)),
    ]
    empty = ("No users: the console makes the first admin when it starts, or add one with "
             "`garrison users add NAME --role admin`.")  # fmt: skip
    render.print_table(columns, found, empty)


@app.command("add")
def add(
    name: Name,
    role: Annotated[str, typer.Option(help="admin, operator or auditor.")],
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Add a user (the password is asked for twice, or read with --password-stdin)."""
    from garrison.auth import check_name, check_role  # noqa: PLC0415

    check_name(name)
    check_role(role)  # before the password is typed
    password = _password(password_stdin)
    with open_local_console(data_dir) as console:
        user = console.accounts().add_user(name, role, password)
    out.print(f"user {shown(user.name)} added, role {user.role}")


@app.command("passwd")
def passwd(
    name: Name, password_stdin: PasswordStdin = False, data_dir: DataDir = DEFAULT_DATA_DIR
) -> None:
    """Set a user's password; the user's sessions end (API tokens go on working)."""
    with open_local_console(data_dir) as console:
        accounts = console.accounts()
        accounts.user(name)  # no such user: said before the password is typed
        accounts.set_password(name, _password(password_stdin))
    out.print(f"password of {shown(name)} changed; its sessions ended")


@app.command("role")
def role(
    name: Name,
    new_role: Annotated[str, typer.Argument(metavar="ROLE", help="admin, operator or auditor.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Change a user's role (the last enabled admin keeps it)."""
    with open_local_console(data_dir) as console:
        user = console.accounts().set_role(name, new_role)
    out.print(f"user {shown(user.name)} is now {user.role}")


@app.command("disable")
def disable(name: Name, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Disable a user: its sessions end and its tokens are refused until it is enabled."""
    with open_local_console(data_dir) as console:
        console.accounts().set_disabled(name, True)
    out.print(f"user {shown(name)} disabled")


@app.command("enable")
def enable(name: Name, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Enable a disabled user again (its tokens work again)."""
    with open_local_console(data_dir) as console:
        console.accounts().set_disabled(name, False)
    out.print(f"user {shown(name)} enabled")


@app.command("remove")
def remove(name: Name, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Remove a user with its tokens and sessions (not the last enabled admin)."""
    with open_local_console(data_dir) as console:
        console.accounts().remove_user(name)
    out.print(f"user {shown(name)} removed, with its tokens and sessions")


@tokens.command("create")
def create_token(
    user: Annotated[str, typer.Argument(help="The user the token acts as.")],
    name: Annotated[str, typer.Option(help="What it is for: ci, laptop…")],
    ttl: Annotated[
        str | None, typer.Option(help="How long it lives: 90d, 12h… (default: until revoked).")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Make a token and print its secret, this once."""
    seconds = None if ttl is None else _duration(ttl)
    with open_local_console(data_dir) as console:
        token, secret = console.accounts().new_token(user, name, seconds)
    print(secret)  # plain: nothing may wrap or colour what is copied
    out.print(
        f"token {token.id} ({shown(token.name)}) for {shown(token.user)}, {_expiry(token)}. "
        "The secret above is not shown again: store it now."
    )


@tokens.command("list")
def list_tokens(
    user: Annotated[str | None, typer.Option(help="Only this user's.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """Tokens by id (their secrets are never shown again)."""
    with open_local_console(data_dir) as console:
        found = console.accounts().tokens(user)
    if as_json:
        print_json([t.to_json() for t in found])
        return
    columns: list[render.Column[ApiToken]] = [
        render.key("id", lambda t: t.id),
        render.key("user", lambda t: shown(t.user)),
        render.key("name", lambda t: shown(t.name)),
        render.key("created", lambda t: human.ago(t.created)),
        render.key("expires", _expires),
        render.key("last used", lambda t: human.ago(t.last_used) if t.last_used else "never"),
    ]
    render.print_table(columns, found, "No API tokens.")


def _expires(token: ApiToken) -> str:
    if token.expires is None:
        return "never"
    return "expired" if token.expires <= time.time() else human.ago(token.expires)


@tokens.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (as listed).")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Revoke a token: it stops working at once."""
    with open_local_console(data_dir) as console:
        console.accounts().revoke_token(token_id)
    out.print(f"token {shown(token_id)} revoked")


def _password(from_stdin: bool) -> str:
    if not from_stdin:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    # One line, its line ending removed (and no other character: spaces may be part of it);
    # a line longer than the longest password is cut one past it, so the rules refuse it.
    from garrison.auth.passwords import MAX_LENGTH  # noqa: PLC0415

    line = sys.stdin.readline(MAX_LENGTH + 3)
    return line.removesuffix("\n").removesuffix("\r")


def _duration(text: str) -> float:
    from garrison.config import parse_duration  # noqa: PLC0415 - pydantic's settings

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"ttl: {exc}") from exc


def _expiry(token: ApiToken) -> str:
    return "expires " + when(token.expires) + " UTC" if token.expires else "never expires"
