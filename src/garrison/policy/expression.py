"""Custom rule expressions, in the style of Prisma Cloud's custom runtime rules.

    proc.pname = "java" and proc.name in ("sh", "bash") and not proc.user = "root"

An expression is parsed once (lark, LALR), checked (known fields, value types), and compiled
to a Python closure; evaluating it is plain attribute reads and comparisons. Every fault in
the text raises ``ExpressionError`` with the line and column of the fault, and nothing else.
The grammar is in docs/rules.md.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import lark

from garrison.errors import InvalidInput
from garrison.policy.expression_ast import (
    FIELD_TYPES,
    Compare,
    In,
    Node,
    Not,
    Operation,
    Value,
    unparse,
)
from garrison.policy.expression_compile import ExprInput, compile_node
from garrison.policy.limits import MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_LENGTH

__all__ = ["ExprInput", "Expression", "ExpressionError", "compile_expression", "parse"]

MAX_LENGTH = MAX_EXPRESSION_LENGTH
MAX_DEPTH = MAX_EXPRESSION_DEPTH  # parentheses count: "((a))" is two levels

GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> not_
         | atom
?atom: comparison
     | "(" or_expr ")"   -> paren
comparison: FIELD OP literal   -> compare
          | FIELD IN list      -> in_
list: "(" [literal ("," literal)*] ")"
    | "[" [literal ("," literal)*] "]"
?literal: STRING | NUMBER

FIELD.2: /[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*/
OP: "!=" | "=" | "<" | ">" | /startswith\b/i | /contains\b/i
IN: /in\b/i
NOT: /not\b/i
_AND: /and\b/i
_OR: /or\b/i
STRING: /"(?:[^"\\]|\\.)*"/s | /'(?:[^'\\]|\\.)*'/s
NUMBER: /\d+/

%import common.WS
%ignore WS
"""


class ExpressionError(InvalidInput):
    """A custom rule expression that cannot be compiled; line and column are 1-based."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        self.reason, self.line, self.column = reason, line, column
        super().__init__(f"line {line}, column {column}: {reason}")


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: ``expr(subject)`` is its value for one event."""

    source: str
    ast: Node
    fields: frozenset[str]
    evaluate: Callable[[ExprInput], bool] = dataclasses.field(compare=False, repr=False)

    def __call__(self, subject: ExprInput) -> bool:
        return self.evaluate(subject)

    def __str__(self) -> str:
        return unparse(self.ast)


def compile_expression(source: str) -> Expression:
    """Parse, check and compile ``source``; ``ExpressionError`` on any fault."""
    ast = parse(source)
    return Expression(source, ast, _fields(ast), compile_node(ast))


def parse(source: str) -> Node:
    """The checked syntax tree of ``source``."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", 1, MAX_LENGTH + 1)
    try:
        tree = _parser().parse(source)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    try:
        return _build(tree, 0)
    except RecursionError:
        raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels", 1, 1) from None


def _syntax_error(exc: lark.exceptions.UnexpectedInput, source: str) -> ExpressionError:
    line, column = exc.line, exc.column
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        return ExpressionError(f"unexpected character {exc.char!r}", line, column)
    if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type != "$END":
        return ExpressionError(f"unexpected {str(exc.token)!r}{_expected(exc)}", line, column)
    # At the end of input lark reports -1 or the last token's place: point past the end.
    line = source.count("\n") + 1
    column = len(source) - (source.rfind("\n") + 1) + 1
    return ExpressionError(f"unexpected end of expression{_expected(exc)}", line, column)


_TERMINAL_NAMES = {
    "FIELD": "a field",
    "OP": "an operator",
    "IN": "in",
    "NOT": "not",
    "_AND": "and",
    "_OR": "or",
    "STRING": "a string",
    "NUMBER": "a number",
    "LPAR": "'('",
    "RPAR": "')'",
    "LSQB": "'['",
    "RSQB": "']'",
    "COMMA": "','",
}


def _expected(exc: lark.exceptions.UnexpectedInput) -> str:
    # ``accepts`` (lark >= 1.0, from the interactive parser) is exact; ``expected`` may list
    # terminals of merged LALR states.
    expected = getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ()
    names = sorted({_TERMINAL_NAMES.get(t, t.lower()) for t in expected if t != "$END"})
    return f"; expected {', '.join(names)}" if names else ""


def _pos(item: lark.Tree[lark.Token] | lark.Token) -> tuple[int, int]:
    if isinstance(item, lark.Token):
        return item.line or 1, item.column or 1
    return item.meta.line, item.meta.column


def _build(item: lark.Tree[lark.Token] | lark.Token, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"nested deeper than {MAX_DEPTH} levels", *_pos(item))
    assert isinstance(item, lark.Tree)  # a bare literal is not a start symbol
    kids = item.children
    if item.data == "not_":
        return Not(_build(kids[1], depth + 1))
    if item.data == "paren":
        return _build(kids[0], depth + 1)
    if item.data in ("or_expr", "and_expr"):
        op: Literal["and", "or"] = "or" if item.data == "or_expr" else "and"
        return Operation(op, tuple(_build(k, depth + 1) for k in kids))
    return _comparison(item)


def _comparison(tree: lark.Tree[lark.Token]) -> Compare | In:
    field_token, op_token, right = tree.children
    field = _field(field_token)
    if tree.data == "in_":
        assert isinstance(right, lark.Tree)
        return In(field, tuple(_value(v, FIELD_TYPES[field]) for v in right.children))
    op = str(op_token).lower()
    return Compare(field, op, _checked(op, field, right))


def _field(token: lark.Tree[lark.Token] | lark.Token) -> str:
    name = str(token)
    if name not in FIELD_TYPES:
        known = ", ".join(sorted(FIELD_TYPES))
        raise ExpressionError(f"unknown field {name!r} (fields: {known})", *_pos(token))
    return name


def _checked(op: str, field: str, token: lark.Tree[lark.Token] | lark.Token) -> Value:
    kind = FIELD_TYPES[field]
    if op in ("<", ">") and kind is not int:
        raise ExpressionError(f"{op!r} compares numbers; {field} is a string", *_pos(token))
    if op in ("startswith", "contains") and kind is not str:
        raise ExpressionError(f"{op!r} needs a string field; {field} is a number", *_pos(token))
    return _value(token, kind)


def _value(token: lark.Tree[lark.Token] | lark.Token, kind: type) -> Value:
    assert isinstance(token, lark.Token)
    value: Value = int(token) if token.type == "NUMBER" else _unquote(str(token))
    if not isinstance(value, kind):
        wanted = "a number" if kind is int else "a string"
        raise ExpressionError(f"expected {wanted}, got {str(token)!r}", *_pos(token))
    return value


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _unquote(text: str) -> str:
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 1
            ch = _ESCAPES.get(body[i], body[i])
        out.append(ch)
        i += 1
    return "".join(out)


def _fields(node: Node) -> frozenset[str]:
    if isinstance(node, Compare | In):
        return frozenset({node.field})
    if isinstance(node, Not):
        return _fields(node.operand)
    return frozenset().union(*(_fields(k) for k in node.operands))
