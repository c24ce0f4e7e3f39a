"""``garrison policies vulnerability|compliance list|apply -f FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from garrison.cli.options import open_console, shown
from garrison.cli.render import Column, free, key, number, table
from garrison.cli.scan import DEFAULT_DATA_DIR, AsJson, DataDir
from garrison.errors import InvalidInput
from garrison.human import plural

if TYPE_CHECKING:
    from garrison.policy.collections import Collection
    from garrison.scan.rules import ComplianceRule, Policy, VulnerabilityRule

app = typer.Typer(help="Vulnerability and compliance rules (what the gate alerts on or blocks).",
                  no_args_is_help=True)  # fmt: skip
out = Console(soft_wrap=True, highlight=False)

PolicyFile = Annotated[
    Path, typer.Option("-f", "--file", help="A YAML or JSON policy: {rules: [...]} or a list.")
]


def _list(kind: str, data_dir: Path, as_json: bool) -> None:
    with open_console(data_dir) as console:
        policy, default = console.gate_policy(kind)
    if as_json:
        print(json.dumps(json.loads(policy.model_dump_json()), indent=2))
        return
    out.print(f"{kind} policy{' (default: none stored)' if default else ''}")
    out.print(_table(policy))


def _table(policy: Policy) -> Table:
    # The rules are pydantic models: imported when shown, never for --help (issue 17).
    from garrison.scan.rules import CompliancePolicy, VulnerabilityPolicy  # noqa: PLC0415

    if isinstance(policy, VulnerabilityPolicy):
        return table(VULNERABILITY, list(enumerate(policy.rules, 1)))
    assert isinstance(policy, CompliancePolicy)
    return table(COMPLIANCE, list(enumerate(policy.rules, 1)))


def _options(rule: VulnerabilityRule) -> str:
    return ", ".join(filter(None, [
        "only fixed" if rule.only_fixed else "",
        f"grace {rule.grace_days}d" if rule.grace_days else "",
        plural(len(rule.exceptions), "exception") if rule.exceptions else "",
        "disabled" if rule.disabled else "",
    ])) or "-"  # fmt: skip


VULNERABILITY: list[Column[tuple[int, VulnerabilityRule]]] = [
    number("#", lambda r: r[0]),
    key("rule", lambda r: shown(r[1].name)),
    key("scope", lambda r: _scope(r[1].collections)),
    key("effect", lambda r: r[1].effect),
    key("alert at", lambda r: r[1].alert_threshold),
    key("block at", lambda r: r[1].block_threshold),
    free("options", lambda r: _options(r[1])),
]
COMPLIANCE: list[Column[tuple[int, ComplianceRule]]] = [
    number("#", lambda r: r[0]),
    key("rule", lambda r: shown(r[1].name)),
    key("scope", lambda r: _scope(r[1].collections)),
    free("checks", lambda r: ", ".join(f"{k}={v}" for k, v in r[1].checks.items()) or "-"),
    key("others", lambda r: r[1].default_effect),
]


def _scope(collections: list[Collection]) -> str:
    return ", ".join(shown(c.name) for c in collections) or "All"


def _apply(kind: str, file: Path, data_dir: Path) -> None:
    from garrison.policy.documents import DocumentError, read_document  # noqa: PLC0415 - as in _table

    try:
        text = read_document(file)
    except DocumentError as exc:
        raise InvalidInput(f"{file}: {exc.problem}") from None
    with open_console(data_dir) as console:
        policy = console.apply_gate_policy(kind, text)
    out.print(f"{kind} policy applied: {len(policy.rules)} rules")


def _register(kind: str) -> None:
    sub = typer.Typer(help=f"The {kind} rules.", no_args_is_help=True)

    @sub.command("list")
    def list_(as_json: AsJson = False, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
        """Show the rules in order (the first whose scope matches applies)."""
        _list(kind, data_dir, as_json)

    @sub.command("apply")
    def apply(file: PolicyFile, data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
        """Replace the rules with a file's; a file with any error is refused whole."""
        _apply(kind, file, data_dir)

    app.add_typer(sub, name=kind)


_register("vulnerability")
_register("compliance")
