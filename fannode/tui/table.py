"""A keyed table on Textual's line API, for views refreshed every second.

Textual's DataTable re-renders every visible cell through Rich whenever any cell changes
(one update counter invalidates its whole render cache): at 1 Hz with 50 instances that
alone took ~19 % of a core. Here each row is one cached Strip of fixed-width cells, rebuilt
only when its cells change, and only changed lines are refreshed; the cursor follows its
row's key when rows come and go. The header stays on top; wide tables scroll sideways.
"""
from __future__ import annotations

import functools
from typing import Callable, Iterable, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = tuple[str, str]  # text, Rich style ('' for none)


class Column(NamedTuple):
    key: str
    label: str
    width: int
    right: bool = False


@functools.lru_cache(maxsize=256)
def _style(spec: str) -> Style:
    return Style.parse(spec) if spec else Style()


def _fit(text: str, width: int, right: bool) -> str:
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + '…' if width > 1 else set_cell_size(text, width)
    return (' ' * (width - cell_len(text)) + text) if right else set_cell_size(text, width)


class RowTable(ScrollView, can_focus=True):
    """Rows of cells, each row with a key: `set_rows` (replace all, in order) or
    `add_rows` (append, oldest dropped past `max_rows`)."""

    BINDINGS = [
        Binding('up', 'cursor(-1)', show=False), Binding('down', 'cursor(1)', show=False),
        Binding('pageup', 'page(-1)', show=False), Binding('pagedown', 'page(1)', show=False),
        Binding('home', 'edge(0)', show=False), Binding('end', 'edge(1)', show=False),
        Binding('enter', 'select', show=False),
    ]
    COMPONENT_CLASSES = {'row-table--header', 'row-table--cursor'}
    DEFAULT_CSS = """
    RowTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        & > .row-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .row-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .row-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    class Selected(Message):
        """Enter on a row, or a click on it: which row and which column."""

        def __init__(self, table: 'RowTable', key: str, column: str):
            super().__init__()
            self.table = table
            self.key = key
            self.column = column

        @property
        def control(self) -> 'RowTable':
            return self.table

    def __init__(self, columns: Iterable[Column], max_rows: int = 0, *, id: str | None = None):
        super().__init__(id=id)
        self.columns = [Column(*c) for c in columns]
        self.max_rows = max_rows
        self.keys: list[str] = []
        self.rows: dict[str, dict[str, Cell]] = {}
        self.cursor_row = 0
        self._strips: dict[str, Strip] = {}
        self._base: Style | None = None
        self._header: Strip | None = None
        self.width_total = sum(c.width + 2 for c in self.columns)
        self.on_cursor: Callable[[], None] | None = None  # called when a key or a click moves the cursor

    # -- content ---------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.keys)

    @property
    def cursor_key(self) -> str | None:
        return self.keys[self.cursor_row] if self.keys else None

    def text(self, key: str, column: str) -> str:
        return self.rows[key].get(column, ('', ''))[0]

    def row_texts(self, key: str) -> list[str]:
        return [self.rows[key].get(c.key, ('', ''))[0] for c in self.columns]

    def set_rows(self, rows: Iterable[tuple[str, dict[str, Cell]]], follow: str | None = None) -> None:
        """Show `rows` in this order. Rows whose cells did not change are not redrawn; the
        cursor stays on its key, or goes to `follow` (e.g. the group of a row that went),
        or stays at its index."""
        rows = list(rows)
        keys = [key for key, _ in rows]
        before = self.cursor_key
        if keys == self.keys:
            for y, (key, cells) in enumerate(rows):
                if cells != self.rows[key]:
                    self.rows[key] = cells
                    self._strips.pop(key, None)
                    self.refresh_line(y + 1)
            return
        old, self.rows = self.rows, dict(rows)
        self._strips = {k: s for k, s in self._strips.items() if k in self.rows and old[k] == self.rows[k]}
        self.keys = keys
        index = {k: i for i, k in enumerate(keys)}
        if before in index:
            self.cursor_row = index[before]
        elif follow in index:
            self.cursor_row = index[follow]
        self.cursor_row = max(0, min(self.cursor_row, len(keys) - 1))
        self._resized()

    def add_rows(self, rows: Iterable[tuple[str, dict[str, Cell]]]) -> None:
        """Append rows (a log); the oldest go past max_rows; a cursor on the last row follows."""
        at_end = self.cursor_row >= len(self.keys) - 1
        for key, cells in rows:
            self.keys.append(key)
            self.rows[key] = cells
        if self.max_rows and len(self.keys) > self.max_rows:
            drop = len(self.keys) - self.max_rows
            for key in self.keys[:drop]:
                self.rows.pop(key, None)
                self._strips.pop(key, None)
            del self.keys[:drop]
            self.cursor_row = max(0, self.cursor_row - drop)
        if at_end and self.keys:
            self.cursor_row = len(self.keys) - 1
        self._resized()
        self._scroll_to_cursor()

    def set_columns(self, columns: Iterable[Column]) -> None:
        """Other columns (cells are looked up by key, so rows need not change)."""
        self.columns = [Column(*c) for c in columns]
        self.width_total = sum(c.width + 2 for c in self.columns)
        self._strips, self._header = {}, None
        self._resized()

    def clear(self) -> None:
        self.keys, self.rows, self._strips = [], {}, {}
        self.cursor_row = 0
        self._resized()

    def _resized(self) -> None:
        self.virtual_size = Size(self.width_total, len(self.keys) + 1)
        self.refresh()

    # -- drawing -----------------------------------------------------------------------

    def _strip(self, cells: dict[str, Cell], base: Style) -> Strip:
        segments = []
        for c in self.columns:
            text, style = cells.get(c.key, ('', ''))
            segments.append(Segment(' %s ' % _fit(text, c.width, c.right), base + _style(style) if style else base))
        return Strip(segments, self.width_total)

    def render_line(self, y: int) -> Strip:
        base = self.rich_style
        if base != self._base:  # theme or focus changed: every cached line is stale
            self._base, self._strips, self._header = base, {}, None
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            if self._header is None:
                header = base + self.get_component_rich_style('row-table--header')
                self._header = self._strip({c.key: (c.label, '') for c in self.columns}, header)
            return self._header.crop_extend(scroll_x, scroll_x + width, base)
        index = scroll_y + y - 1
        if index >= len(self.keys):
            return Strip.blank(width, base)
        key = self.keys[index]
        if index == self.cursor_row:  # one line, drawn on its own: the cursor's colours win
            strip = self._strip(self.rows[key], base + self.get_component_rich_style('row-table--cursor'))
        elif key in self._strips:
            strip = self._strips[key]
        else:
            strip = self._strips[key] = self._strip(self.rows[key], base)
        return strip.crop_extend(scroll_x, scroll_x + width, base).apply_offsets(scroll_x, y)

    # -- the cursor ------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self.keys:
            return
        row = max(0, min(row, len(self.keys) - 1))
        if row != self.cursor_row:
            old, self.cursor_row = self.cursor_row, row
            self.refresh_line(old + 1)
            self.refresh_line(row + 1)
            if self.on_cursor is not None:
                self.on_cursor()
        self._scroll_to_cursor()

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_to_cursor(self) -> None:
        top, page = round(self.scroll_y), self._page()
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + page:
            self.scroll_to(y=self.cursor_row - page + 1, animate=False)

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor_row + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * self._page())

    def action_edge(self, end: int) -> None:
        self.move_cursor(len(self.keys) - 1 if end else 0)

    def action_select(self) -> None:
        if self.keys:
            self.post_message(self.Selected(self, self.keys[self.cursor_row], ''))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        index = round(self.scroll_y) + event.y - 1
        if 0 <= index < len(self.keys):
            self.move_cursor(index)
            self.post_message(self.Selected(self, self.keys[index], self.column_at(event.x + round(self.scroll_x))))

    def column_at(self, x: int) -> str:
        for c in self.columns:
            if x < c.width + 2:
                return c.key
            x -= c.width + 2
        return ''
