"""A table of plain-text cells printed as rich's `Table(*headers, box=None)` prints it, in a
fraction of the time: rich renders every cell through markup, padding and segments
(about 0.5 s for 1,000 rows of 8 cells, `fannode discover -i` on 1,000 instances).

rich still decides everything that takes judgement: the column widths (its own
`_calculate_column_widths`, run on a table of the header and the few rows that hold each
column's widest cell and longest word, which is all a width depends on), the header line
(rendered by rich with those widths, so its style is rich's), and how a cell too wide for
its column wraps or ends in '…' (`Text.wrap`, as the table does). What is left is padding
strings. A cell that markup or emoji codes would change, or that holds a newline or tab,
sends the whole table to rich as before.
"""
from __future__ import annotations

import re
from typing import Sequence

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.table import Table
from rich.text import Text

_SPACE = re.compile(r'\s')
_EMOJI = re.compile(r':[^\s:/]*:')  # no emoji name has a '/': an endpoint is never one


def print_table(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print `rows` under `headers` on `console`, as `console.print(Table(*headers, box=None))`
    with those rows added would."""
    if not _plain(console, headers, rows) or not hasattr(Table, '_calculate_column_widths'):
        console.print(_rich_table(headers, rows))
        return
    widths = _widths(console, headers, rows)
    if min(widths) < 3:  # a column squeezed to its padding: rare enough to leave to rich
        console.print(_rich_table(headers, rows))
        return
    head = Table(*headers, box=None)
    for column, width in zip(head.columns, widths):
        column.width = width - 2  # without the padding of one space each side
    console.print(head)
    if rows:
        body = '\n'.join(line for row in rows for line in _lines(console, row, widths))
        console.print(Text(body), soft_wrap=True, markup=False, emoji=False, highlight=False)


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(*headers, box=None)
    for row in rows:
        table.add_row(*row)
    return table


def _plain(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> bool:
    """Whether every cell prints as its own text (no markup, no emoji code, one line)."""
    for cell in (*headers, *(c for row in rows for c in row)):
        if '\n' in cell or '\t' in cell or '\r' in cell:
            return False
        if '[' in cell or _EMOJI.search(cell):  # maybe markup, maybe an :emoji: code: ask rich
            rendered = console.render_str(cell, highlight=False)
            if rendered.plain != cell or rendered.spans:
                return False
    return True


def _widths(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """The widths rich gives the columns, padding included: a column's width depends only
    on its widest cell and its longest word, so those rows stand for all."""
    keep: set[int] = set()
    for col in range(len(headers) if rows else 0):
        sizes = [cell_len(row[col]) for row in rows]
        words = [_longest_word(row[col]) if _SPACE.search(row[col]) else size for row, size in zip(rows, sizes)]
        keep.update((sizes.index(max(sizes)), words.index(max(words))))
    table = _rich_table(headers, [rows[r] for r in sorted(keep)])
    options = console.options
    return table._calculate_column_widths(console, options.update_width(options.max_width - table._extra_width))


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=cell_len(text))


def _lines(console: Console, row: Sequence[str], widths: Sequence[int]) -> list[str]:
    """One row as lines: each cell padded to its column, or wrapped as rich wraps it."""
    cells = []
    for text, width in zip(row, widths):
        inner = width - 2
        size = cell_len(text)
        if size <= inner:
            cells.append([text + ' ' * (inner - size)])
        elif not _SPACE.search(text):  # one word: cut, as Text.wrap's 'ellipsis' cuts it
            cells.append([set_cell_size(text, inner - 1) + '…'])
        else:
            cells.append([line.plain for line in Text(text).wrap(console, inner, justify='left',
                                                                  overflow='ellipsis')])
    height = max(len(c) for c in cells)
    return [''.join(' %s ' % (c[i] if i < len(c) else ' ' * (w - 2)) for c, w in zip(cells, widths))
            for i in range(height)]
