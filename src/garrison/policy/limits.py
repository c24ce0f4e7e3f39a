"""The limits on rule files and rules, in one place: runtime rules (docs/rules.md) and the
vulnerability and compliance policies (docs/scanning.md) alike.

Each bounds the memory and time one input may cost, well above what a real rule set needs:
1,000 rules that leave every key at its default export (``garrison rules export``) to about
1 MB of YAML, 60,000 values, and the export of an accepted set must apply again.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from garrison.text import code_point, first_unsafe

MIB = 1 << 20

MAX_FILE_BYTES = 4 * MIB  # a rules or policy file, read no further
MAX_RULES = 1_000  # rules in a file (runtime, vulnerability or compliance)
MAX_DEPTH = 32  # YAML or JSON nesting (a rule file nests about eight levels)
MAX_VALUES = 200_000  # YAML or JSON values: scalars, lists, mappings and keys
MAX_NAME = 200  # a rule's, custom rule's or collection's name
MAX_TEXT = 4_096  # notes, messages
MAX_PATTERN = 4_096  # one path, image, label or other pattern, port or address
MAX_EXPRESSION_LENGTH = 8_192  # a custom rule's expression, in characters
MAX_EXPRESSION_DEPTH = 64  # its nesting: parentheses, not, and, or


def safe_name(name: str) -> str:
    """A name is shown in tables, audits and alerts: nothing in it may act on a terminal."""
    char = first_unsafe(name)
    if char is not None:
        raise ValueError(
            f"a name cannot hold {code_point(char)} (no control, format or bidi characters)"
        )
    return name


Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME), AfterValidator(safe_name)
]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Pattern = Annotated[str, StringConstraints(max_length=MAX_PATTERN)]


def too_many_rules(count: int) -> str | None:
    """The problem with a file of ``count`` rules, if any (checked before any rule is)."""
    if count <= MAX_RULES:
        return None
    return f"{count} rules; a file holds at most {MAX_RULES}"
