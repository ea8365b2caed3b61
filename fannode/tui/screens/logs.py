"""The log pane (`l`): the live logs of a row, by level and searched; a line's trace one
key away."""
from __future__ import annotations

import collections
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from fannode.tui.cells import log_cells
from fannode.tui.rows import LEVELS, LogBatch, Row
from fannode.tui.screens.trace import TraceScreen
from fannode.tui.table import Column, RowTable

if TYPE_CHECKING:
    from fannode.tui.source import Source

LOG_ROWS = 2000        # log lines kept in the pane


class LogScreen(Screen[None]):
    CSS_PATH = Path(__file__).with_name('logs.tcss')  # absolute: found from subclasses elsewhere too
    BINDINGS = [
        Binding('escape', 'close', 'back'),
        Binding('1', 'level(0)', 'debug'), Binding('2', 'level(1)', 'info'), Binding('3', 'level(2)', 'warning'),
        Binding('4', 'level(3)', 'error'), Binding('5', 'level(4)', 'critical'),
        Binding('slash', 'search', 'search', key_display='/'),
        Binding('t', 'trace', 'trace'),
        Binding('q', 'app.quit', 'quit'),
    ]

    def __init__(self, source: Source, row: Row | None, level: int = 1):
        """The logs of `row` (None: of every service) at `level` (an index in LEVELS) and above."""
        super().__init__()
        self.source = source
        self.row = row
        self.level = level
        self.search = ''
        self.follow = 0
        self.records: collections.deque[dict] = collections.deque(maxlen=LOG_ROWS)
        self.traces: dict[str, str] = {}  # table row key → the line's trace id
        self.problem = ''
        self._seq = 0

    def compose(self) -> ComposeResult:
        yield Static('', id='log-title')
        yield RowTable([Column('time', 'time', 12), Column('level', 'level', 8), Column('who', 'instance', 16),
                        Column('trace', 'trace', 8),
                        Column('msg', 'message', max(30, self.app.size.width - 58))], LOG_ROWS, id='logs')
        yield Input(placeholder='search the lines shown (Enter applies, empty clears, Esc leaves it)', id='search')
        yield Static('', id='log-status')
        yield Footer()

    def on_mount(self) -> None:
        self.query_one('#search', Input).display = False
        self.table.focus()
        self.table.on_cursor = self._title  # off the newest line: paused, says the status
        self._refollow()

    def on_unmount(self) -> None:
        self.source.stop_logs()

    @property
    def table(self) -> RowTable:
        return self.query_one('#logs', RowTable)

    @property
    def what(self) -> str:
        if self.row is None:
            return 'every service'
        return self.row.name if self.row.is_group else '%s (pid %s)' % (self.row.name, self.row.pid)

    def _refollow(self) -> None:
        self.records.clear()
        self.problem = ''
        self.follow = self.source.follow_logs(self.row, LEVELS[self.level])
        self._redraw()

    def _title(self) -> None:
        levels = ' '.join(('[reverse]%d %s[/]' if i == self.level else '%d %s') % (i + 1, name.lower())
                          for i, name in enumerate(LEVELS))
        search = '  search: [b]%s[/]' % Text(self.search).markup if self.search else ''
        self.query_one('#log-title', Static).update('[b]logs of %s[/]  %s and above  %s%s' % (
            Text(self.what).markup, LEVELS[self.level].lower(), levels, search))
        count = self.table.row_count
        status = self.problem or '%d line%s' % (count, '' if count == 1 else 's')
        if not self.problem and count and self.table.cursor_row < count - 1:  # add_rows follows only from the end
            status += '  paused: the cursor is off the newest line (End follows again)'
        self.query_one('#log-status', Static).update(Text(status, style='bold red' if self.problem else 'dim'))

    def take(self, batch: LogBatch) -> None:
        if batch.follow != self.follow:
            return  # for a level no longer asked for
        if batch.error:
            self.problem = batch.error
        self.records.extend(batch.records)
        self._add([r for r in batch.records if self._matches(r)])
        self._title()

    def _matches(self, record: dict) -> bool:
        if not self.search:
            return True
        needle = self.search.lower()
        return any(needle in str(record.get(k, '')).lower() for k in ('msg', 'logger', 'trace'))

    def _add(self, records: list[dict]) -> None:
        rows = []
        for record in records:
            self._seq += 1
            key = 'r%d' % self._seq
            self.traces[key] = str(record.get('trace') or '')
            rows.append((key, log_cells(record)))
        self.table.add_rows(rows)
        if len(self.traces) > 2 * LOG_ROWS:
            self.traces = {k: self.traces[k] for k in self.table.keys}

    def _redraw(self) -> None:
        self.table.clear()
        self.traces = {}
        self._add([r for r in self.records if self._matches(r)])
        self._title()

    def action_level(self, level: int) -> None:
        if level != self.level:
            self.level = level
            self._refollow()

    def action_search(self) -> None:
        box = self.query_one('#search', Input)
        box.display = True
        box.value = self.search
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search = event.value.strip()
        event.input.display = bool(self.search)
        self.table.focus()
        self._redraw()

    def on_key(self, event: events.Key) -> None:
        box = self.query_one('#search', Input)
        if event.key == 'escape' and box.has_focus:  # leave the box, keep the filter
            event.stop()
            box.display = bool(self.search)
            self.table.focus()

    def action_trace(self) -> None:
        key = self.table.cursor_key
        self.app.push_screen(TraceScreen(self.source, self.traces.get(key, '') if key else ''))

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        """Enter on a line, or a click on its trace id: that trace."""
        trace_id = self.traces.get(event.key, '')
        if trace_id and event.column in ('', 'trace'):
            self.app.push_screen(TraceScreen(self.source, trace_id))

    def action_close(self) -> None:
        self.app.pop_screen()
