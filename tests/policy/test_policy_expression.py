"""Custom rule expressions: what they mean, their canonical text, and their errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.errors import InvalidInput
from garrison.policy import ExpressionError, ExprInput, compile_expression
from garrison.policy.expression import MAX_DEPTH, parse
from garrison.policy.expression_ast import FIELD_TYPES, Compare, In, Node, Not, Operation, unparse

SHELL_FROM_JAVA = ExprInput(proc_name="sh", proc_pname="java", proc_user="app")


def holds(source: str, subject: ExprInput) -> bool:
    return compile_expression(source)(subject)


def test_a_prisma_style_rule_matches_what_it_names() -> None:
    rule = 'proc.pname = "java" and proc.name in ("sh", "bash") and not proc.user = "root"'
    assert holds(rule, SHELL_FROM_JAVA)
    assert not holds(rule, ExprInput(proc_name="sh", proc_pname="java", proc_user="root"))
    assert not holds(rule, ExprInput(proc_name="ls", proc_pname="java", proc_user="app"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('proc.cmdline contains "stratum"', True),
        ('proc.cmdline startswith "xmrig"', True),
        ('proc.cmdline startswith "stratum"', False),
        ("net.outgoing_port > 1024", True),
        ("net.outgoing_port < 1024", False),
        ("net.outgoing_port in [3333, 4444]", True),
        ("net.outgoing_port != 3333", False),
        ('file.dir = "/etc"', True),
        ("proc.name in ()", False),
    ],
)
def test_each_operator_compares_as_documented(source: str, expected: bool) -> None:
    subject = ExprInput(
        proc_cmdline="xmrig -o stratum+tcp://pool:3333",
        net_outgoing_port=3333,
        file_dir="/etc",
    )
    assert holds(source, subject) is expected


def test_keywords_are_case_insensitive_and_strings_take_either_quote() -> None:
    assert holds("proc.name = 'sh' AND NOT proc.user = \"root\"", SHELL_FROM_JAVA)


def test_not_binds_tighter_than_and_which_binds_tighter_than_or() -> None:
    t, f = 'proc.name = "sh"', 'proc.name = "no"'
    assert holds(f"{t} or {t} and {f}", SHELL_FROM_JAVA)  # t or (t and f)
    assert not holds(f"({t} or {t}) and {f}", SHELL_FROM_JAVA)
    assert not holds(f"not {t} and {t}", SHELL_FROM_JAVA)  # (not t) and t
    assert holds(f"not ({f} and {t})", SHELL_FROM_JAVA)


def test_escapes_in_strings_are_decoded() -> None:
    assert holds(r'proc.cmdline = "say \"hi\"\\n"', ExprInput(proc_cmdline='say "hi"\\n'))
    assert holds(r'proc.cmdline = "a\tb"', ExprInput(proc_cmdline="a\tb"))


@pytest.mark.parametrize(
    ("source", "line", "column", "reason"),
    [
        ('proc.name = "a" andd proc.name = "b"', 1, 17, "unexpected character 'a'"),
        ('proc.nam = "x"', 1, 1, "unknown field 'proc.nam'"),
        ('PROC.NAME = "x"', 1, 1, "unknown field 'PROC.NAME'"),
        ('proc.name < "x"', 1, 13, "compares numbers"),
        ("proc.name = 3", 1, 13, "expected a string"),
        ('net.outgoing_port = "22"', 1, 21, "expected a number"),
        ('net.outgoing_port contains "2"', 1, 28, "needs a string field"),
        ('(proc.name = "a"', 1, 17, "unexpected end of expression; expected ')'"),
        ('proc.name = "a"\n  or\n  proc.name ?', 3, 13, "unexpected character '?'"),
        ('proc.name "a"', 1, 11, "expected an operator, in"),
        ("", 1, 1, "unexpected end of expression"),
        ('proc.name in ("a" "b")', 1, 19, "expected ')', ','"),
        ('proc.name = "unterminated', 1, 13, "unexpected character '\"'"),
    ],
)
def test_a_bad_expression_is_refused_with_the_place_of_the_fault(
    source: str, line: int, column: int, reason: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"line {line}, column {column}: ")
    assert isinstance(caught.value, InvalidInput)


def test_nesting_deeper_than_the_limit_is_refused_not_a_crash() -> None:
    deep = "not " * (MAX_DEPTH + 5) + 'proc.name = "x"'
    with pytest.raises(ExpressionError, match="nested deeper"):
        compile_expression(deep)
    parens = "(" * 5000 + 'proc.name = "x"' + ")" * 5000
    with pytest.raises(ExpressionError):
        compile_expression(parens)


# -- properties -----------------------------------------------------------------------------

STR_FIELDS = sorted(f for f, t in FIELD_TYPES.items() if t is str)
text = st.text(max_size=8)
ports = st.integers(min_value=0, max_value=65535)


def comparisons() -> st.SearchStrategy[Node]:
    string_ops = st.sampled_from(["=", "!=", "startswith", "contains"])
    return st.one_of(
        st.builds(Compare, st.sampled_from(STR_FIELDS), string_ops, text),
        st.builds(Compare, st.just("net.outgoing_port"), st.sampled_from("=!<>"), ports).map(
            lambda c: Compare(c.field, "!=" if c.op == "!" else c.op, c.value)
        ),
        st.builds(In, st.sampled_from(STR_FIELDS), st.lists(text, max_size=3).map(tuple)),
        st.builds(In, st.just("net.outgoing_port"), st.lists(ports, max_size=3).map(tuple)),
    )


def trees() -> st.SearchStrategy[Node]:
    def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        ops = st.sampled_from(["and", "or"])
        operands = st.lists(children, min_size=2, max_size=3).map(tuple)
        return st.one_of(st.builds(Not, children), st.builds(Operation, ops, operands))

    return st.recursive(comparisons(), extend, max_leaves=8)


subjects = st.builds(
    ExprInput,
    proc_name=text,
    proc_pname=text,
    proc_path=text,
    proc_user=text,
    proc_cmdline=text,
    file_path=text,
    file_dir=text,
    net_outgoing_port=ports,
    net_outgoing_ip=text,
)


def reference(node: Node, s: ExprInput) -> bool:
    """The meaning of a tree, written the obvious way."""
    if isinstance(node, Not):
        return not reference(node.operand, s)
    if isinstance(node, Operation):
        values = [reference(k, s) for k in node.operands]
        return all(values) if node.op == "and" else any(values)
    value = getattr(s, node.field.replace(".", "_"))
    if isinstance(node, In):
        return value in node.values
    return {
        "=": value == node.value,
        "!=": value != node.value,
        "<": value < node.value,
        ">": value > node.value,
        "startswith": isinstance(value, str) and value.startswith(str(node.value)),
        "contains": isinstance(value, str) and str(node.value) in value,
    }[node.op]


@given(trees())
def test_the_canonical_text_parses_back_to_the_same_tree(tree: Node) -> None:
    assert parse(unparse(tree)) == tree


@given(trees(), subjects)
def test_a_compiled_expression_means_what_its_tree_means(tree: Node, subject: ExprInput) -> None:
    assert compile_expression(unparse(tree))(subject) == reference(tree, subject)


def outcome(source: str) -> ExpressionError | None:
    """The error compiling ``source`` raises, or None when it compiles (and then runs)."""
    try:
        compile_expression(source)(ExprInput())
    except ExpressionError as error:
        return error
    return None


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_any_text_compiles_or_raises_expression_error(source: str) -> None:
    error = outcome(source)
    assert error is None or (error.line >= 1 and error.column >= 1)


tokens = st.sampled_from(
    [*FIELD_TYPES, "=", "!=", "<", ">", "in", "not", "and", "or", "startswith", "contains",
     "(", ")", "[", "]", ",", '"x"', "'y'", "42", '"', "\\", "\n", " "]
)  # fmt: skip


@settings(max_examples=500)
@given(st.lists(tokens, max_size=14))
def test_any_sequence_of_tokens_compiles_or_raises_expression_error(parts: list[str]) -> None:
    source = " ".join(parts)
    error = outcome(source)
    if error is not None:
        lines = source.split("\n")
        assert 1 <= error.line <= len(lines)
        assert 1 <= error.column <= len(lines[error.line - 1]) + 1
