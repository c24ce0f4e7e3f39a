"""Rule and policy files into plain data (YAML or JSON), within ``garrison.policy.limits``.

A file is read no further than its limit, and its YAML is composed with a loader that counts
as it goes: deeper nesting or more values than the limits stop it at once (PyYAML's composer
recurses per level, so deep nesting would otherwise end in ``RecursionError``). Aliases are
refused: an alias repeats a value without repeating its text, so a few lines could stand for
billions of values ("billion laughs"); a rule file writes its values out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.nodes import Node

from garrison.errors import InvalidInput
from garrison.policy.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, MIB
from garrison.text import clip

Format = Literal["yaml", "json"]


class DocumentError(InvalidInput):
    """A file that is not valid YAML or JSON (``syntax``), or one over a limit."""

    def __init__(self, problem: str, *, syntax: bool = False) -> None:
        self.problem, self.syntax = problem, syntax
        super().__init__(problem)


def read_document(path: Path) -> str:
    """The text of ``path``; refused when larger than ``MAX_FILE_BYTES`` or not UTF-8."""
    try:
        with path.open("rb") as file:
            _check_size(os.fstat(file.fileno()).st_size)
            data = file.read(MAX_FILE_BYTES + 1)  # a pipe or device tells no size
    except OSError as exc:
        raise DocumentError(f"cannot be read: {exc.strerror or exc}") from exc
    _check_size(len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(f"not UTF-8 text (byte {exc.start})", syntax=True) from None


def _check_size(size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise DocumentError(
            f"{size / MIB:.1f} MiB; a rules file is at most {MAX_FILE_BYTES // MIB} MiB"
        )


def parse_document(text: str, fmt: Format = "yaml") -> Any:
    """The data in ``text``; ``DocumentError`` when it is not valid or over a limit."""
    _check_size(len(text))  # characters: at most the bytes of the file
    return _parse_json(text) if fmt == "json" else _parse_yaml(text)


def _parse_json(text: str) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise DocumentError(f"{where}: {exc.msg}", syntax=True) from None
    except RecursionError:
        raise DocumentError(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # an integer of more digits than int() takes
        raise DocumentError(f"not valid JSON: {clip(str(exc))}", syntax=True) from None
    _check_tree(data)
    return data


def _check_tree(data: Any) -> None:
    """The limits the YAML loader checks as it composes, for data parsed as JSON."""
    stack, values = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        values += 1 + (len(value) if isinstance(value, dict) else 0)  # keys count too
        if depth > MAX_DEPTH:
            raise DocumentError(f"nested deeper than {MAX_DEPTH} levels")
        if values > MAX_VALUES:
            raise DocumentError(f"more than {MAX_VALUES} values")
        if isinstance(value, dict | list):
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def _parse_yaml(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except yaml.YAMLError as exc:
        raise DocumentError(_yaml_problem(exc), syntax=True) from None
    except (ValueError, OverflowError) as exc:  # a date like 2024-02-30, a huge integer
        raise DocumentError(f"not valid YAML: {clip(str(exc))}", syntax=True) from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"not valid YAML: {problem}"
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses aliases, and counts nesting and values as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth, self._values = 0, 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise _refusal(event, f"an alias (*{clip(str(event.anchor), 40)}) is refused")
        self._depth, self._values = self._depth + 1, self._values + 1
        if self._depth > MAX_DEPTH:
            raise _refusal(event, f"nested deeper than {MAX_DEPTH} levels")
        if self._values > MAX_VALUES:
            raise _refusal(event, f"more than {MAX_VALUES} values")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refusal(event: yaml.events.Event, problem: str) -> DocumentError:
    mark = event.start_mark
    if mark is None:
        return DocumentError(problem)
    return DocumentError(f"line {mark.line + 1}, column {mark.column + 1}: {problem}")
