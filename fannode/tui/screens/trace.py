"""The trace view (`t`, or Enter on a log line): a trace's spans as a tree with a
waterfall, and its log lines (of one span, once one is chosen)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from fannode.logs.spans import span_tree
from fannode.tui.cells import log_cells, num, who
from fannode.tui.rows import TraceResult
from fannode.tui.table import Column, RowTable

if TYPE_CHECKING:
    from fannode.tui.source import Source


def waterfall(span: dict, start: float, total: float, width: int = 20) -> str:
    """Where the span sits in the trace's time, as a bar (a span's `ts` is when it began)."""
    ts, ms = span.get('ts'), span.get('duration_ms')
    if not isinstance(ts, (int, float)) or not isinstance(ms, (int, float)) or total <= 0:
        return ''
    left = min(width - 1, int(max(0.0, ts - start) / total * width))
    size = min(width - left, max(1, round(ms / 1000.0 / total * width)))
    return ' ' * left + '█' * size


class TraceScreen(Screen[None]):
    CSS_PATH = Path(__file__).with_name('trace.tcss')  # absolute: found from subclasses elsewhere too
    BINDINGS = [Binding('escape', 'close', 'back'), Binding('q', 'app.quit', 'quit')]

    def __init__(self, source: Source, trace_id: str = ''):
        """The spans and logs of `trace_id`, looked up at once; without one, type it."""
        super().__init__()
        self.source = source
        self.trace_id = trace_id
        self.result: TraceResult | None = None
        self.only_span = ''

    def compose(self) -> ComposeResult:
        width = self.app.size.width
        with Horizontal(id='trace-bar'):
            yield Static('trace id ', id='trace-label')
            yield Input(value=self.trace_id, placeholder='a trace id, then Enter', id='trace-id')
        with Horizontal(id='trace-panes'):
            with Vertical(id='spans-pane'):
                yield Static('[b]path[/b]', classes='pane-title')
                yield RowTable([Column('name', 'span', 30), Column('who', 'instance', 14), Column('type', 'type', 5),
                                Column('ms', 'ms', 8, True), Column('status', 'status', 8), Column('bar', '', 20)],
                               id='spans')
            with Vertical(id='trace-logs-pane'):
                yield Static('[b]logs[/b]', classes='pane-title', id='trace-logs-title')
                yield RowTable([Column('time', 'time', 12), Column('level', 'level', 8), Column('who', 'instance', 14),
                                Column('msg', 'message', max(20, width * 2 // 5 - 46))], id='trace-logs')
        yield Static('', id='trace-status')
        yield Footer()

    def on_mount(self) -> None:
        if self.trace_id:
            self._ask(self.trace_id)
            self.query_one('#spans').focus()
        else:
            self.query_one('#trace-id', Input).focus()

    def _ask(self, trace_id: str) -> None:
        self.trace_id = trace_id
        self.only_span = ''
        self._status('looking up trace %s…' % trace_id)
        self.source.trace(trace_id)

    def _status(self, text: str, error: bool = False) -> None:
        self.query_one('#trace-status', Static).update(Text(text, style='bold red' if error else 'dim'))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        trace_id = event.value.strip()
        if trace_id:
            self._ask(trace_id)
            self.query_one('#spans').focus()

    def take(self, result: TraceResult) -> None:
        if result.trace_id != self.trace_id:
            return
        self.result = result
        tree = span_tree(result.records)
        stamps = [(s['ts'], s['ts'] + (s.get('duration_ms') or 0) / 1000.0) for _, s in tree
                  if isinstance(s.get('ts'), (int, float))]
        start = min((a for a, _ in stamps), default=0.0)
        total = max((b for _, b in stamps), default=0.0) - start
        rows = []
        for depth, s in tree:
            status = str(s.get('status', ''))
            rows.append((str(s.get('span') or id(s)), {
                'name': ('  ' * depth + ('└ ' if depth else '') + str(s.get('name', '?')), ''),
                'who': (who(s), 'cyan'), 'type': (str(s.get('type', '')), ''),
                'ms': (num(s.get('duration_ms')), ''),
                'status': (status, 'green' if status in ('ok', '200') else 'bold red' if status else ''),
                'bar': (waterfall(s, start, total), 'cyan')}))
        self.query_one('#spans', RowTable).set_rows(rows)
        lines = self._show_logs()
        if result.error:
            self._status(result.error, error=True)
        elif not result.records:
            self._status('nothing recorded for trace %s (yet): the logs may not have reached the pipeline' %
                         result.trace_id, error=True)
        else:
            self._status('%d span%s, %d log line%s' % (len(tree), '' if len(tree) == 1 else 's',
                                                       lines, '' if lines == 1 else 's'))

    def _show_logs(self) -> int:
        lines = [r for r in (self.result.records if self.result else ()) if r.get('kind', 'log') == 'log'
                 and (not self.only_span or r.get('span') == self.only_span)]
        self.query_one('#trace-logs', RowTable).set_rows(('l%d' % i, log_cells(r)) for i, r in enumerate(lines))
        title = 'logs of span %s' % self.only_span[:8] if self.only_span else 'logs'
        self.query_one('#trace-logs-title', Static).update('[b]%s[/b]' % title)
        return len(lines)

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        if event.table.id == 'spans':
            self.only_span = '' if self.only_span == event.key else event.key
            self._show_logs()

    def action_close(self) -> None:
        self.app.pop_screen()
