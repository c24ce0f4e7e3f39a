"""Read rule files (YAML or JSON) whole: one fault anywhere refuses the file, and the message
names the rule and the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
import yaml

from garrison.errors import InvalidInput
from garrison.policy.documents import DocumentError, Format, parse_document, read_document
from garrison.policy.limits import MAX_NAME, too_many_rules
from garrison.policy.schema import RuleSet
from garrison.text import clip, first_unsafe


class InvalidRules(InvalidInput):
    """A rule file that cannot be used; ``problems`` lists every fault, the message the first."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{source}: {clip(problems[0], 500)}{more}")


def load_rules_file(path: Path) -> RuleSet:
    """Rules from a file (``.json`` is JSON, anything else YAML), within the limits of
    ``garrison.policy.limits``."""
    try:
        text = read_document(path)
    except DocumentError as exc:
        raise InvalidRules(str(path), [exc.problem]) from None
    return load_rules(text, source=str(path), fmt="json" if path.suffix == ".json" else "yaml")


def load_rules(text: str, *, source: str = "rules", fmt: Format = "yaml") -> RuleSet:
    """Rules from text: a list of rules, or a mapping with a ``rules`` list."""
    try:
        data = parse_document(text, fmt)
    except DocumentError as exc:
        raise InvalidRules(source, [exc.problem]) from None
    if isinstance(data, list):
        data = {"rules": data}
    if data is None:
        data = {"rules": []}
    if not isinstance(data, dict):
        raise InvalidRules(source, ["expected a list of rules or a mapping with 'rules'"])
    rules = data.get("rules")
    problem = too_many_rules(len(rules)) if isinstance(rules, list) else None
    if problem:
        raise InvalidRules(source, [problem])
    try:
        return RuleSet.model_validate(data)
    except pydantic.ValidationError as exc:
        raise InvalidRules(source, [_describe(e, data) for e in exc.errors()]) from None


def dump_rules(rules: RuleSet, fmt: Format = "yaml") -> str:
    data = rules.model_dump(mode="json")
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return yaml.safe_dump(data, sort_keys=False)


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
    if not isinstance(name, str) or not name or len(name) > MAX_NAME or first_unsafe(name):
        return fallback  # a name that is itself the fault is not echoed
    return f"{what} {name!r}"
