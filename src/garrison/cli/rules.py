"""``garrison rules``: the runtime rules (see docs/rules.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from garrison.cli.defaults import DEFAULT_DATA_DIR
from garrison.cli.options import AsJson, DataDir, open_console, out, print_json, shown
from garrison.cli.render import Column, free, key, number, print_table

if TYPE_CHECKING:
    from garrison.policy import RuleSet, RuntimeRule

app = typer.Typer(
    help="Runtime rules: what to alert on, prevent or block (docs/rules.md).",
    no_args_is_help=True,
)


Summary = dict[str, object]
COLUMNS: list[Column[Summary]] = [
    number("#", lambda s: s["order"]),
    key("name", lambda s: shown(s["name"]) + (" (disabled)" if s["disabled"] else "")),
    key("processes", lambda s: shown(s["processes"])),
    key("network", lambda s: shown(s["network"])),
    key("filesystem", lambda s: shown(s["filesystem"])),
    free("scope", lambda s: shown(str(s["scope"]).replace(",", ", "))),
]


@app.command("list")
def list_rules(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """List the rules in order: the first whose scope covers a container applies."""
    with open_console(data_dir) as console:
        rules = console.runtime_rules()
    if as_json:
        print_json([_summary(i, r) for i, r in enumerate(rules.rules, 1)])
        return
    empty = "No runtime rules: the default policy applies (alert on anomalies)."
    print_table(COLUMNS, [_summary(i, r) for i, r in enumerate(rules.rules, 1)], empty)


def _summary(order: int, rule: RuntimeRule) -> dict[str, object]:
    scope = "; ".join(
        ",".join(c.images) + (f" labels={','.join(c.labels)}" if c.labels != ["*"] else "")
        for c in rule.scope
    )
    return {
        "order": order,
        "name": rule.name,
        "scope": scope or "*",
        "processes": rule.processes.effect,
        "network": rule.network.effect,
        "filesystem": rule.filesystem.effect,
        "disabled": rule.disabled,
    }


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="The rule's name.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """Show one rule whole (YAML, or JSON with --json)."""
    # The policy package (lark, pydantic) is imported by what uses it, never for --help.
    from garrison.policy import RuleSet  # noqa: PLC0415

    with open_console(data_dir) as console:
        rule = console.runtime_rule(name)
    _print(RuleSet(rules=[rule]), "json" if as_json else "yaml")


@app.command()
def apply(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="A YAML or JSON rule file.", exists=False)
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Put the rules of FILE in force, replacing all rules (checked whole first)."""
    from garrison.policy import load_rules_file  # noqa: PLC0415 - as in show

    rules = load_rules_file(file)
    with open_console(data_dir) as console:
        console.apply_runtime_rules(rules)
    out.print(
        f"{len(rules.rules)} runtime rule(s) applied (version {rules.digest()[:12]}); "
        "a running defender puts them in force within a second."
    )


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="yaml or json.")] = "yaml",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print every rule, in a file `garrison rules apply -f` takes back."""
    with open_console(data_dir) as console:
        rules = console.runtime_rules()
    _print(rules, "json" if fmt == "json" else "yaml")


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="The rule's name.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Delete one rule; the others keep their order."""
    with open_console(data_dir) as console:
        left = console.delete_runtime_rule(name)
    out.print(f"rule {shown(repr(name))} deleted; {len(left.rules)} left.")


def _print(rules: RuleSet, fmt: Literal["yaml", "json"]) -> None:
    from garrison.policy import dump_rules  # noqa: PLC0415 - as in show

    print(dump_rules(rules, fmt), end="")
