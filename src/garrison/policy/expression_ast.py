"""The syntax tree of a custom rule expression, and its canonical text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Value = str | int

# Every field an expression may name, with the type of its value.
FIELD_TYPES: dict[str, type] = {
    "proc.name": str,
    "proc.pname": str,
    "proc.path": str,
    "proc.user": str,
    "proc.cmdline": str,
    "file.path": str,
    "file.dir": str,
    "net.outgoing_port": int,
    "net.outgoing_ip": str,
}

CompareOp = str  # "=", "!=", "<", ">", "startswith", "contains"


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: CompareOp
    value: Value


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class Operation:
    op: Literal["and", "or"]
    operands: tuple[Node, ...]  # two or more


Node = Compare | In | Not | Operation


def quote(value: Value) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unparse(node: Node) -> str:
    """Canonical text: parses back to an equal tree."""
    if isinstance(node, Compare):
        return f"{node.field} {node.op} {quote(node.value)}"
    if isinstance(node, In):
        return f"{node.field} in ({', '.join(quote(v) for v in node.values)})"
    if isinstance(node, Not):
        return f"not {_operand(node.operand, Not)}"
    return f" {node.op} ".join(_operand(k, node) for k in node.operands)


def _operand(node: Node, parent: Node | type[Not]) -> str:
    text = unparse(node)
    if isinstance(node, Operation) and (parent is Not or _binds_looser(node, parent)):
        return f"({text})"
    return text


def _binds_looser(node: Operation, parent: Node | type[Not]) -> bool:
    # "and" binds tighter than "or"; an operation nested in the same operation needs
    # parentheses too, or it would flatten into its parent when parsed back.
    return isinstance(parent, Operation) and node.op in ("or", parent.op)
