"""Terminal tables that never cut a figure: column widths that show every figure whole side by
side, or, where the terminal is too narrow for that, one row per figure. Rich's own sizing cuts
a column to "0.9…" (0.9538 and 0.9000 alike) or folds "10,000" mid-number to make a table fit;
the CLI's tables and the tune's live table size themselves here instead."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from rich.cells import cell_len

if TYPE_CHECKING:
    from rich.table import Table

FIGURE_BREAKS = "(?<=,) "  # "15/30, best 12" wraps after its comma; "0.9538", "10,000" never


def across_widths(columns: Mapping[str, str | Sequence[str]], space: int, *,
                  border: int | None = None, breaks: Mapping[str, str] | None = None
                  ) -> list[int]:
    """Column widths that show every figure whole across `space` columns, a column per
    heading in `columns` (its value, or its values, one per row): each value on one line where
    that fits, else wrapped at its breaks (a figure after its commas, "15/30," over "best 12";
    a column named in `breaks` at its own pattern, e.g. a class name at its spaces); the room
    left goes to the values, then to the headings, which wrap at their spaces. [] where even
    that does not fit: then show one row per figure (`one_row_each`). `border`: the
    characters the table draws besides its columns (default: a rule and a space each side
    of every column, rich's default box)."""
    breaks = breaks or {}
    cells = {name: [value] if isinstance(value, str) else list(value)
             for name, value in columns.items()}

    def widest(texts: Iterable[str], pattern: str) -> int:  # the longest piece, comma kept,
        # in the terminal's columns (a Chinese character takes two: a name sized by len()
        # folded mid-name on a terminal with room for it; review)
        return max((cell_len(part) for text in texts for part in re.split(pattern, text)),
                   default=0)

    border = 3 * len(cells) + 1 if border is None else border
    for first in (True, False):
        widths = [max(widest(values, "\n" if first else breaks.get(name, FIGURE_BREAKS)),
                      widest([name], r"\s")) for name, values in cells.items()]
        if sum(widths) + border <= space:
            break
    else:
        return []
    wanted = [(i, widest(values, "\n"), name in breaks)
              for i, (name, values) in enumerate(cells.items())]
    for index, whole, partly in wanted:  # whole figures
        if not partly and widths[index] < whole <= widths[index] + space - border - sum(widths):
            widths[index] = whole  # a figure is all or nothing: half-unwrapped, no line saved
    # then the headings, all on one line or none widened: one widened beside another still on
    # four lines saved no line and took the room a figure needed (review)
    headings = [max(width, widest([name], "\n")) for width, name in zip(widths, cells)]
    if sum(headings) + border <= space:
        widths = headings
    # what is left goes to the wrapping columns still short, by what each lacks: in rows of
    # words every line saved counts
    lacking = {i: whole - widths[i] for i, whole, partly in wanted if partly and
               widths[i] < whole}
    room, total = space - border - sum(widths), sum(lacking.values())
    for index, short in lacking.items():
        widths[index] += min(short, room * short // total)
    return widths


def one_row_each(table: Table, rows: Iterable[tuple[str, str]]) -> Table:
    """`table` as a label and its figure on each row, no headings: the layout for a terminal
    too narrow for the figures side by side. A label wraps (a two-line heading, "s\\nentren.",
    is one label here); a figure never does. A row with no figure is a heading in bold."""
    table.add_column("", overflow="fold")
    table.add_column("", justify="right", no_wrap=True)
    table.show_header = False
    for label, figure in rows:
        table.add_row(label.replace("\n", " "), figure, style="" if figure else "bold")
    return table
