"""`fannode top`: the Textual app. It only draws and asks; everything that talks to the
cluster happens in the source (fannode.tui.source), which sends back snapshots, action
outcomes, log records and traces as messages."""
from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any, Iterable

from rich.text import Text
from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from fannode.tui.source import LEVELS, LogBatch, Row, Snapshot, Status, TraceResult
from fannode.tui.table import Cell, Column, RowTable

STATUS_SECONDS = 8.0   # an action's outcome stays this long in the status line
LOG_ROWS = 2000        # log lines kept in the pane

COLUMNS = (
    Column('name', 'service / instance', 24),
    Column('count', 'inst', 5, True),
    Column('pid', 'pid', 7, True),
    Column('host', 'host', 12),
    Column('state', 'state', 12),
    Column('uptime', 'uptime', 7, True),
    Column('restarts', 'restarts', 8, True),
    Column('cpu', 'cpu %', 6, True),
    Column('rss', 'rss MiB', 7, True),
    Column('rps', 'rpc/s', 7, True),
    Column('errors', 'errors', 6, True),
    Column('p99', 'p99 ms', 7, True),
    Column('eps', 'ev/s', 6, True),
    Column('hps', 'http/s', 6, True),
)
STATE_STYLES = {
    'running': 'green', 'ready': 'green', 'starting': 'yellow', 'waiting': 'yellow', 'backoff': 'yellow',
    'degraded': 'yellow', 'stopping': 'dim', 'stopped': 'dim', 'unresponsive': 'bold red',
    'error': 'bold red', 'failed': 'bold red',
}
LEVEL_STYLES = {'DEBUG': 'dim', 'INFO': '', 'WARNING': 'yellow', 'ERROR': 'bold red', 'CRITICAL': 'bold white on red'}

HELP = """\
[b]fannode top[/b]: every service and instance, refreshed every second

[b]Main view[/b]
  ↑ ↓ PgUp PgDn   select a row
  + (or =) / -    one process more / fewer in the selected row's node block
  r               restart the selected instance (the node starts a new one)
  R               restart every process of the selected service or block
  l               logs of the selected row (service, block or instance)
  t               trace view: type a trace id
  ?               this help          q   quit

[b]Log pane[/b]
  1 2 3 4 5       level: DEBUG INFO WARNING ERROR CRITICAL and above
  /               search (Enter applies, empty clears)
  Enter or click  the selected line's trace
  Esc             back

[b]Trace view[/b]
  Enter           look up the trace id typed
  Enter on a span only that span's logs (again: all)
  Esc             back

Scaling and restarting need a node (`fannode up`) running the node.yml
top was started for (--file); without one the rows come from discovery.

Press any key to close."""


# -- formatting ----------------------------------------------------------------

def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return '-'
    if abs(value) >= 100:
        return '%.0f' % value
    return '%.*f' % (digits, value)


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return '-'
    s = int(seconds)
    if s < 60:
        return '%ds' % s
    if s < 3600:
        return '%dm%02ds' % divmod(s, 60)
    if s < 86400:
        return '%dh%02dm' % (s // 3600, s % 3600 // 60)
    return '%dd%02dh' % (s // 86400, s % 86400 // 3600)


def cells(row: Row) -> dict[str, Cell]:
    """Each column's (text, style) for one row: compared between refreshes, so only the
    rows that changed are drawn again."""
    group = row.is_group
    name = row.name if group else '  ' + row.name
    if row.kind == 'block':
        name = '%s (node)' % row.name
    return {
        'name': (name, 'bold' if group else ''),
        'count': (row.count, 'bold' if group else ''),
        'pid': (str(row.pid) if row.pid else '', ''),
        'host': (row.host, 'dim'),
        'state': (row.state, STATE_STYLES.get(row.state, '')),
        'uptime': ('' if group else _uptime(row.uptime), ''),
        'restarts': ('' if row.restarts is None else str(row.restarts), 'yellow' if row.restarts else ''),
        'cpu': (_num(row.cpu), ''),
        'rss': (_num(row.rss / 1048576 if row.rss is not None else None), ''),
        'rps': (_num(row.rps), 'bold' if row.rps else ''),
        'errors': ('-' if row.errors is None else str(row.errors), 'bold red' if row.errors else ''),
        'p99': (_num(row.p99), ''),
        'eps': (_num(row.eps), ''),
        'hps': (_num(row.hps), ''),
    }


# -- the main view -------------------------------------------------------------

class TopScreen(Screen):
    """The table of services and instances, the status line, the keys."""

    BINDINGS = [
        Binding('plus,equals_sign', 'scale(1)', 'scale +1', key_display='+'),
        Binding('minus', 'scale(-1)', 'scale -1', key_display='-'),
        Binding('r', 'restart', 'restart instance'),
        Binding('R', 'restart_group', 'restart service'),
        Binding('l', 'logs', 'logs'),
        Binding('t', 'trace', 'trace'),
    ]

    def __init__(self, source: Any, clock: Any = time.time):
        super().__init__()
        self.source = source
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.rows: dict[str, Row] = {}
        self.status: tuple[str, bool, float] = ('', True, 0.0)
        self._lines: dict[str, tuple] = {}

    def compose(self) -> ComposeResult:
        yield Static('fannode top: connecting…', id='summary')
        yield RowTable(COLUMNS, id='table')
        yield Static('', id='status')
        yield Footer()

    def on_mount(self) -> None:
        self.query_one('#table', RowTable).focus()
        self.source.attach(self.app.deliver)  # now that the table can take rows

    @property
    def table(self) -> RowTable:
        return self.query_one('#table', RowTable)

    def show(self, snapshot: Snapshot) -> None:
        """A new snapshot: rows drawn again only where something changed, the cursor on
        the same row (on its service when an instance went)."""
        selected = self.selected()
        self.snapshot = snapshot
        self.rows = {r.key: r for r in snapshot.rows}
        self.table.set_rows(((r.key, cells(r)) for r in snapshot.rows),
                            follow=selected.group if selected is not None else None)
        self._summary()
        self._show_status()

    def selected(self) -> Row | None:
        key = self.table.cursor_key
        return self.rows.get(key) if key is not None else None

    def _summary(self) -> None:
        s = self.snapshot
        if s is None:
            return
        node = 'node %s' % s.node if s.node else 'no node for %s' % s.node_file
        when = time.strftime('%H:%M:%S', time.localtime(s.taken)) if s.taken else ''
        text = Text.assemble(('fannode top', 'bold'), '  ', s.registry, '  ', (node, '' if s.node else 'dim'),
                             '  %d service%s, %d instance%s' % (s.services, '' if s.services == 1 else 's',
                                                                s.instances, '' if s.instances == 1 else 's'),
                             '  ', (when, 'dim'))
        self._line('#summary', text)

    # -- the status line -----------------------------------------------------------

    def set_status(self, text: str, ok: bool = True) -> None:
        self.status = (text.splitlines()[0] if text else '', ok, self.clock())
        self._show_status()

    def _show_status(self) -> None:
        text, ok, when = self.status
        line = Text()
        if text and self.clock() - when < STATUS_SECONDS:
            line.append(text, style='' if ok else 'bold red')
        elif self.snapshot is not None and self.snapshot.problems:
            line.append(self.snapshot.problems[0], style='bold red')
        self._line('#status', line)

    def _line(self, selector: str, text: Text) -> None:
        """A one-line Static, updated only when it changes and without a new layout (its
        size is fixed): every second, that is most of what the screen costs besides rows."""
        key = (text.plain, tuple(text.spans))
        if self._lines.get(selector) != key:
            self._lines[selector] = key
            self.query_one(selector, Static).update(text, layout=False)

    # -- keys --------------------------------------------------------------------

    def _target(self, what: str) -> Row | None:
        row = self.selected()
        if row is None:
            self.set_status('select a row to %s' % what, ok=False)
        return row

    def action_scale(self, delta: int) -> None:
        row = self._target('scale')
        if row is None:
            return
        if row.blocks:
            self.set_status('scaling %s %+d…' % (row.blocks[0], delta))
        self.source.scale(row, delta)

    def action_restart(self) -> None:
        row = self._target('restart')
        if row is not None:
            self.source.restart(row)

    def action_restart_group(self) -> None:
        row = self._target('restart')
        if row is not None:
            self.source.restart(row if row.is_group else self.rows.get(row.group, row))

    def action_logs(self) -> None:
        self.app.push_screen(LogScreen(self.selected()))

    def action_trace(self) -> None:
        self.app.push_screen(TraceScreen())


class TopApp(App):
    CSS_PATH = Path(__file__).with_name('app.tcss')  # absolute: subclasses elsewhere find it too
    TITLE = 'fannode top'
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding('question_mark', 'help', 'help', key_display='?'),
        Binding('q', 'quit', 'quit'),
    ]

    class Update(Message):
        """Something the source delivered (from its thread)."""

        def __init__(self, kind: str, payload: Any):
            super().__init__()
            self.kind = kind
            self.payload = payload

    def __init__(self, source: Any, clock: Any = time.time):
        super().__init__()
        self.source = source
        self.main = TopScreen(source, clock)

    def get_default_screen(self) -> Screen:
        return self.main

    def on_unmount(self) -> None:
        self.source.stop()

    def deliver(self, kind: str, payload: Any) -> None:
        """The source's way in: any thread, never blocks."""
        self.post_message(self.Update(kind, payload))

    def on_top_app_update(self, message: Update) -> None:
        payload = message.payload
        if isinstance(payload, Snapshot):
            self.main.show(payload)
        elif isinstance(payload, Status):
            self.main.set_status(payload.text, payload.ok)
            if self.screen is not self.main:
                self.notify(payload.text, severity='information' if payload.ok else 'error')
        else:
            kind = LogScreen if isinstance(payload, LogBatch) else TraceScreen
            for screen in self.screen_stack:
                if isinstance(screen, kind):
                    screen.take(payload)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())


class HelpScreen(ModalScreen):
    def compose(self) -> ComposeResult:
        yield Static(HELP, id='help')

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss()


# -- the log pane -----------------------------------------------------------------

def _clock(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return ''
    return time.strftime('%H:%M:%S', time.localtime(ts)) + ('%.3f' % (ts % 1))[1:]


def _who(record: dict) -> str:
    return str(record.get('instance') or record.get('service') or record.get('pid') or '')


def log_cells(record: dict) -> dict[str, Cell]:
    """A log record (or a span record, said in one line) as the log tables show it."""
    level = str(record.get('level', ''))
    msg = str(record.get('msg', ''))
    if record.get('kind') == 'span':
        msg = '%s %s %s in %s ms' % (record.get('type', ''), record.get('name', ''), record.get('status', ''),
                                     _num(record.get('duration_ms')))
    return {'time': (_clock(record.get('ts')), ''), 'level': (level, LEVEL_STYLES.get(level, '')),
            'who': (_who(record), 'cyan'), 'trace': (str(record.get('trace') or '')[:8], 'underline magenta'),
            'msg': (msg.replace('\n', ' ⏎ '), '')}


class LogScreen(Screen):
    BINDINGS = [
        Binding('escape', 'close', 'back'),
        Binding('1', 'level(0)', 'debug'), Binding('2', 'level(1)', 'info'), Binding('3', 'level(2)', 'warning'),
        Binding('4', 'level(3)', 'error'), Binding('5', 'level(4)', 'critical'),
        Binding('slash', 'search', 'search', key_display='/'),
        Binding('t', 'trace', 'trace'),
        Binding('q', 'app.quit', 'quit'),
    ]

    def __init__(self, row: Row | None, level: int = 1):
        super().__init__()
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
        self._refollow()

    def on_unmount(self) -> None:
        self.app.source.stop_logs()

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
        self.follow = self.app.source.follow_logs(self.row, LEVELS[self.level])
        self._redraw()

    def _title(self) -> None:
        levels = ' '.join(('[reverse]%d %s[/]' if i == self.level else '%d %s') % (i + 1, name.lower())
                          for i, name in enumerate(LEVELS))
        search = '  search: [b]%s[/]' % Text(self.search).markup if self.search else ''
        self.query_one('#log-title', Static).update('[b]logs of %s[/]  %s and above  %s%s' % (
            Text(self.what).markup, LEVELS[self.level].lower(), levels, search))
        count = self.table.row_count
        status = self.problem or '%d line%s' % (count, '' if count == 1 else 's')
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
        self.app.push_screen(TraceScreen(self.traces.get(key, '') if key else ''))

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        """Enter on a line, or a click on its trace id: that trace."""
        trace_id = self.traces.get(event.key, '')
        if trace_id and event.column in ('', 'trace'):
            self.app.push_screen(TraceScreen(trace_id))

    def action_close(self) -> None:
        self.app.pop_screen()


# -- the trace view ---------------------------------------------------------------

def span_tree(records: Iterable[dict]) -> list[tuple[int, dict]]:
    """The spans of a trace as (depth, span), each after its parent, siblings by time."""
    spans = [r for r in records if r.get('kind') == 'span']
    ids = {s.get('span') for s in spans}
    children: dict[Any, list[dict]] = collections.defaultdict(list)
    for s in spans:
        children[s.get('parent') if s.get('parent') in ids else None].append(s)
    out: list[tuple[int, dict]] = []

    def walk(parent: Any, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda r: r.get('ts', 0)):
            out.append((depth, s))
            if s.get('span') is not None and s.get('span') != parent:
                walk(s.get('span'), depth + 1)
    walk(None, 0)
    return out


def waterfall(span: dict, start: float, total: float, width: int = 20) -> str:
    """Where the span sits in the trace's time, as a bar (a span's `ts` is when it began)."""
    ts, ms = span.get('ts'), span.get('duration_ms')
    if not isinstance(ts, (int, float)) or not isinstance(ms, (int, float)) or total <= 0:
        return ''
    left = min(width - 1, int(max(0.0, ts - start) / total * width))
    size = min(width - left, max(1, round(ms / 1000.0 / total * width)))
    return ' ' * left + '█' * size


class TraceScreen(Screen):
    BINDINGS = [Binding('escape', 'close', 'back'), Binding('q', 'app.quit', 'quit')]

    def __init__(self, trace_id: str = ''):
        super().__init__()
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
        self.app.source.trace(trace_id)

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
                'who': (_who(s), 'cyan'), 'type': (str(s.get('type', '')), ''),
                'ms': (_num(s.get('duration_ms')), ''),
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
