"""Read rule files (YAML or JSON) whole: one fault anywhere refuses the file, and the message
names the rule and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

from garrison.errors import InvalidInput
from garrison.policy.schema import RuleSet

Format = Literal["yaml", "json"]


class InvalidRules(InvalidInput):
    """A rule file that cannot be used; ``problems`` lists every fault, the message the first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {problems[0]}{more}")


def load_rules_file(path: Path) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRules(str(path), [f"cannot be read: {exc}"]) from exc
    return load_rules(text, source=str(path), fmt="json" if path.suffix == ".json" else "yaml")


def load_rules(text: str, *, source: str = "rules", fmt: Format = "yaml") -> RuleSet:
    """Rules from text: a list of rules, or a mapping with a ``rules`` list."""
    data = _parse(text, source, fmt)
    if isinstance(data, list):
        data = {"rules": data}
    if data is None:
        data = {"rules": []}
    if not isinstance(data, dict):
        raise InvalidRules(source, ["expected a list of rules or a mapping with 'rules'"])
    try:
        return RuleSet.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InvalidRules(source, [_describe(e, data) for e in exc.errors()]) from None


def dump_rules(rules: RuleSet, fmt: Format = "yaml") -> str:
    data = rules.model_dump(mode="json")
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


def _parse(text: str, source: str, fmt: Format) -> Any:
    try:
        return json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InvalidRules(source, [f"line {exc.lineno}, column {exc.colno}: {exc.msg}"]) from exc
    except yaml.YAMLError as exc:
        raise InvalidRules(source, [_yaml_problem(exc)]) from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"not valid YAML: {problem}"
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _describe(error: Any, data: dict[str, Any]) -> str:
    """``rule 'web' (#2), processes.denied.effect: Input should be …``."""
    loc = list(error["loc"])
    msg = str(error["msg"]).removeprefix("Value error, ")
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
        return f"{'.'.join(map(str, loc)) or 'rules'}: {msg}"
    rule = _item(data.get("rules"), loc[1])
    where = [_name(rule, f"rule #{loc[1] + 1}", "rule")]
    rest = loc[2:]
    if len(rest) >= 2 and rest[0] == "custom" and isinstance(rest[1], int):
        custom = _item(rule.get("custom") if isinstance(rule, dict) else None, rest[1])
        where.append(_name(custom, f"custom rule #{rest[1] + 1}", "custom rule"))
        rest = rest[2:]
    field = ".".join(map(str, rest))
    return f"{', '.join(where)}{', ' + field if field else ''}: {msg}"


def _item(items: Any, index: int) -> Any:
    return items[index] if isinstance(items, list) and index < len(items) else None


def _name(item: Any, fallback: str, what: str) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{what} {name!r}" if isinstance(name, str) and name else fallback
