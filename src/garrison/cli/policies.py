"""``garrison policies vulnerability|compliance list|apply -f FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from garrison.cli.options import shown
from garrison.cli.scan import DEFAULT_DATA_DIR, AsJson, DataDir
from garrison.errors import InvalidInput
from garrison.policy.collections import Collection
from garrison.policy.documents import DocumentError, read_document
from garrison.scan.rules import (
    CompliancePolicy,
    Policy,
    VulnerabilityPolicy,
    load_policies,
    save_policy,
)
from garrison.store import SQLiteStore

app = typer.Typer(help="Vulnerability and compliance rules (what the gate alerts on or blocks).",
                  no_args_is_help=True)  # fmt: skip
out = Console(soft_wrap=True, highlight=False)

PolicyFile = Annotated[
    Path, typer.Option("-f", "--file", help="A YAML or JSON policy: {rules: [...]} or a list.")
]


def _list(kind: str, data_dir: Path, as_json: bool) -> None:
    store = SQLiteStore.in_dir(data_dir)
    try:
        stored = store.get_policy(kind) is not None
        policies = load_policies(store)
    finally:
        store.close()
    policy: Policy = getattr(policies, kind)
    if as_json:
        print(json.dumps(json.loads(policy.model_dump_json()), indent=2))
        return
    out.print(f"{kind} policy{'' if stored else ' (default: none stored)'}")
    out.print(_table(policy))


def _table(policy: Policy) -> Table:
    if isinstance(policy, VulnerabilityPolicy):
        table = Table("#", "Rule", "Scope", "Effect", "Alert at", "Block at", "Options")
        for n, r in enumerate(policy.rules, 1):
            options = ", ".join(filter(None, [
                "only fixed" if r.only_fixed else "",
                f"grace {r.grace_days}d" if r.grace_days else "",
                f"{len(r.exceptions)} exceptions" if r.exceptions else "",
                "disabled" if r.disabled else "",
            ]))  # fmt: skip
            table.add_row(str(n), shown(r.name), _scope(r.collections), r.effect,
                          r.alert_threshold, r.block_threshold, options)  # fmt: skip
        return table
    table = Table("#", "Rule", "Scope", "Checks", "Others")
    assert isinstance(policy, CompliancePolicy)
    for n, c in enumerate(policy.rules, 1):
        checks = ", ".join(f"{k}={v}" for k, v in c.checks.items()) or "-"
        table.add_row(str(n), shown(c.name), _scope(c.collections), checks, c.default_effect)
    return table


def _scope(collections: list[Collection]) -> str:
    return ", ".join(shown(c.name) for c in collections) or "All"


def _apply(kind: str, file: Path, data_dir: Path) -> None:
    try:
        text = read_document(file)
    except DocumentError as exc:
        raise InvalidInput(f"{file}: {exc.problem}") from None
    store = SQLiteStore.in_dir(data_dir)
    try:
        policy = save_policy(store, kind, text)
    finally:
        store.close()
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
