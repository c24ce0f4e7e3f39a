"""What the CLI prints for people: tables that fit the terminal, human durations and times,
and ``--output wide|json|yaml``.

Tables follow two rules. A *free-text* cell (a message, a command, a reason) takes the width
that is left and wraps in it. A *key* cell (an id, a name, a state, a count, a time) keeps its
whole width; only when the keys would leave the free text less than ``MIN_FREE`` columns does
the widest key fold onto more lines — whole still: nothing is ever cut to ``…``. Commands
choose the columns that fit 80 columns by default; ``--output wide`` shows every one.

Times in tables are ages (``12s ago``, ``in 30s``); ``--output wide`` and one-line summaries
give the local time (``2026-12-04 10:14:34``). JSON and YAML keep the stored values.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import typer
from rich import box
from rich.console import Console as RichConsole
from rich.table import Table
from rich.text import Text

from garrison.cli.options import out, print_json
from garrison.errors import InvalidInput

MIN_FREE = 10  # the least a free-text column gets before keys may fold
GAP = 2  # spaces between columns
HANG = 2  # the indent of a wrapped line's continuation
UNLIMITED = 1 << 20  # the width a wide table is measured in

T = TypeVar("T")


class Output(enum.StrEnum):
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"


OutputOption = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="wide: every column (local times); json: as --json; yaml: the same as YAML.",
        case_sensitive=False,
    ),
]


def output_of(output: Output | None, as_json: bool) -> Output | None:
    """The format asked for: ``--json`` is ``--output json``; None is the default table."""
    if as_json and output not in (None, Output.JSON):
        raise InvalidInput(f"--json is --output json: give --json or --output {output}, not both")
    return Output.JSON if as_json else output


def emit(data: Any, output: Output) -> None:
    """``data`` for scripts, as JSON or as YAML (the same values: YAML is made from the JSON)."""
    if output is Output.YAML:
        import yaml  # noqa: PLC0415 - only --output yaml needs it; every --help imports this

        plain = json.loads(json.dumps(data, default=str))
        # allow_unicode=False: control, bidi and other non-ASCII characters become escapes
        print(yaml.safe_dump(plain, sort_keys=False, allow_unicode=False), end="")
    else:
        print_json(data)


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column(Generic[T]):
    """A column of a table of ``T``: its header, and the cell of one ``T`` in rich markup
    (text from elsewhere ``shown``)."""

    header: str
    cell: Callable[[T], str]
    free: bool = False  # long free text: wraps in the width the keys leave
    right: bool = False  # numbers


def key(header: str, cell: Callable[[T], str]) -> Column[T]:
    """An id, a name, a state, a time: shown whole."""
    return Column(header, cell)


def free(header: str, cell: Callable[[T], str]) -> Column[T]:
    """A message, a command, a reason: wrapped in what the keys leave."""
    return Column(header, cell, free=True)


def number(header: str, cell: Callable[[T], object]) -> Column[T]:
    return Column(header, lambda item: str(cell(item)), right=True)


def table(columns: Sequence[Column[T]], items: Iterable[T], *, fit: bool = True) -> Table:
    """A table of ``items``: keys whole and free text wrapped in the terminal's width, or
    (``fit`` false) every cell on one line, however long."""
    rows = [[c.cell(item) for c in columns] for item in items]
    widths = [
        max([len(c.header)] + [Text.from_markup(row[i]).cell_len for row in rows])
        for i, c in enumerate(columns)
    ]
    sizes = _layout(widths, columns, out.width - GAP * (len(columns) - 1)) if fit else {}
    made = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                 header_style="bold")  # fmt: skip
    for i, column in enumerate(columns):
        made.add_column(
            column.header,
            justify="right" if column.right else "left",
            width=sizes.get(i),
            no_wrap=i not in sizes,
            overflow="fold",
        )
    for row in rows:
        made.add_row(*row)
    return made


def _layout(widths: Sequence[int], columns: Sequence[Column[T]], room: int) -> dict[int, int]:
    """The widths of the columns that wrap, when the table is wider than ``room``: the free
    text, down to MIN_FREE; then, if the keys still do not fit, the widest keys too (a long
    image name folds; ids, states and times stay whole). A folded key gets what is left
    first, the free text the rest."""
    if sum(widths) <= room:
        return {}
    folding = [i for i, c in enumerate(columns) if c.free]
    whole = sorted(set(range(len(columns))) - set(folding), key=lambda i: widths[i])
    least = {i: min(MIN_FREE, widths[i]) for i in range(len(columns))}
    while whole and sum(widths[i] for i in whole) + sum(least[i] for i in folding) > room:
        folding.append(whole.pop())
    left = room - sum(widths[i] for i in whole) - sum(least[i] for i in folding)
    sizes = {i: least[i] for i in folding}
    keys = [i for i in folding if not columns[i].free]
    for group in (keys, [i for i in folding if columns[i].free]):
        for i, extra in _share(left, {i: widths[i] - least[i] for i in group}).items():
            sizes[i] += extra
            left -= extra
    return sizes


def _share(total: int, wants: dict[int, int]) -> dict[int, int]:
    """``total`` shared out in equal parts, none given more than it wants."""
    got = dict.fromkeys(wants, 0)
    hungry = [i for i in wants if wants[i] > 0]
    while total > 0 and hungry:
        each = max(1, total // len(hungry))
        for i in hungry:
            give = min(each, wants[i] - got[i], total)
            got[i] += give
            total -= give
        hungry = [i for i in hungry if got[i] < wants[i]]
    return got


def print_table(
    columns: Sequence[Column[T]], items: Sequence[T], empty: str, *, fit: bool = True
) -> None:
    """The table of ``items``, or the word for none (``empty``). ``fit`` false (``--output
    wide``): each row on one line, as wide as it needs (``less -S`` scrolls it)."""
    if not items:
        out.print(empty, highlight=False)
        return
    made = table(columns, items, fit=fit)
    if fit:
        out.print(made)
        return
    width = out.measure(made, options=out.options.update_width(UNLIMITED)).maximum
    RichConsole(width=width, highlight=False).print(made)


def say(markup: str) -> None:
    """A line for people, wrapped at the terminal's width (never cut); its continuation
    lines indented two spaces more than it."""
    text = Text.from_markup(markup)
    hang = len(text.plain) - len(text.plain.lstrip(" ")) + HANG
    first, *_ = text.wrap(out, out.width, overflow="fold") or [Text()]
    rest = text[len(first.plain) :]
    rest = rest[len(rest.plain) - len(rest.plain.lstrip(" ")) :]
    lines = [first, *(rest.wrap(out, out.width - hang, overflow="fold") if rest.plain else [])]
    for index, line in enumerate(lines):
        line.rstrip()
        out.print(Text(" " * hang) + line if index else line, soft_wrap=True, highlight=False)
