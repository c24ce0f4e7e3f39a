"""Compile an expression tree to nested closures: nothing is looked up by name per event."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from garrison.policy.expression_ast import Compare, In, Node, Not

Predicate = Callable[["ExprInput"], bool]


@dataclass(frozen=True, slots=True)
class ExprInput:
    """The values an expression reads, one attribute per field (``proc.name`` → ``proc_name``).

    A field the event does not have is ``""`` (or ``0`` for the port).
    """

    proc_name: str = ""
    proc_pname: str = ""
    proc_path: str = ""
    proc_user: str = ""
    proc_cmdline: str = ""
    file_path: str = ""
    file_dir: str = ""
    net_outgoing_port: int = 0
    net_outgoing_ip: str = ""


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
    "startswith": str.startswith,
    "contains": operator.contains,
}


def compile_node(node: Node) -> Predicate:
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, In):
        get, values = _getter(node.field), frozenset(node.values)
        return lambda s: get(s) in values
    if isinstance(node, Not):
        inner = compile_node(node.operand)
        return lambda s: not inner(s)
    parts = [compile_node(k) for k in node.operands]
    combine = _and if node.op == "and" else _or
    result = parts[0]
    for part in parts[1:]:
        result = combine(result, part)
    return result


def _getter(field: str) -> Callable[[ExprInput], Any]:
    return operator.attrgetter(field.replace(".", "_"))


def _compare(node: Compare) -> Predicate:
    get, op, value = _getter(node.field), _OPS[node.op], node.value
    return lambda s: op(get(s), value)


def _and(left: Predicate, right: Predicate) -> Predicate:
    return lambda s: left(s) and right(s)


def _or(left: Predicate, right: Predicate) -> Predicate:
    return lambda s: left(s) or right(s)
