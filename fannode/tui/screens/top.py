"""The main view: the table of services and instances, the status line, the keys."""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from fannode.tui.cells import cells
from fannode.tui.rows import Row, Snapshot
from fannode.tui.screens.logs import LogScreen
from fannode.tui.screens.trace import TraceScreen
from fannode.tui.table import Column, RowTable

if TYPE_CHECKING:
    from fannode.tui.source import Deliver, Source

STATUS_SECONDS = 8.0   # an action's outcome stays this long in the status line
# Absolute, so subclasses elsewhere find it too. The app loads it as well: Textual loads
# the CSS_PATH of pushed screens only, and this one is the default screen.
TOP_TCSS = Path(__file__).with_name('top.tcss')

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

# Shown after 'state' from the first time a service misses a dependency or has a breaker
# not closed, and from then on: a cluster that uses neither keeps its narrower table.
DEPENDENCY_COLUMNS = (
    Column('deps', 'missing deps', 14),     # dependencies with no ready instance
    Column('breakers', 'breakers', 16),     # circuit breakers of its calls, those not closed
)


# Shown after 'inst' from the first time a service announces versions: each instance's,
# and on a service row the version its unpinned calls reach (docs/versions.md).
VERSION_COLUMN = Column('version', 'version', 20)
WIDE_COUNT = 7


def with_dependencies(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    at = [c.key for c in columns].index('state') + 1
    return columns[:at] + DEPENDENCY_COLUMNS + columns[at:]


def with_wide_count(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    """From the first count of 100 or more ('120/200'): the narrow column cut it to '120/…'."""
    return tuple(c._replace(width=WIDE_COUNT) if c.key == 'count' else c for c in columns)


def with_versions(columns: tuple[Column, ...]) -> tuple[Column, ...]:
    at = [c.key for c in columns].index('count') + 1
    return columns[:at] + (VERSION_COLUMN,) + columns[at:]


class TopScreen(Screen[None]):
    CSS_PATH = TOP_TCSS
    BINDINGS = [
        Binding('plus,equals_sign', 'scale(1)', 'scale +1', key_display='+'),
        Binding('minus', 'scale(-1)', 'scale -1', key_display='-'),
        Binding('r', 'restart', 'restart instance'),
        Binding('R', 'restart_group', 'restart service'),
        Binding('l', 'logs', 'logs'),
        Binding('t', 'trace', 'trace'),
        Binding('v', 'route', 'switch version', show=False),  # in the help (?): the footer is full
    ]

    def __init__(self, source: Source, deliver: Deliver, clock: Callable[[], float] = time.time):
        """`deliver`: where the source sends what it has, once this screen can show it."""
        super().__init__()
        self.source = source
        self.deliver = deliver
        self.clock = clock
        self.snapshot: Snapshot | None = None
        self.rows: dict[str, Row] = {}
        self.status: tuple[str, bool, float] = ('', True, 0.0)
        self._lines: dict[str, tuple] = {}
        self.dependencies = False  # the dependency columns are shown
        self.versions = False  # the version column is shown
        self.wide = False  # the count column is widened

    def compose(self) -> ComposeResult:
        yield Static('fannode top: connecting…', id='summary')
        yield RowTable(COLUMNS, id='table')
        yield Static('', id='status')
        yield Footer()

    def on_mount(self) -> None:
        self.query_one('#table', RowTable).focus()
        self.source.attach(self.deliver)  # now that the table can take rows

    @property
    def table(self) -> RowTable:
        return self.query_one('#table', RowTable)

    def show(self, snapshot: Snapshot) -> None:
        """A new snapshot: rows drawn again only where something changed, the cursor on
        the same row (on its service when an instance went)."""
        selected = self.selected()
        self.snapshot = snapshot
        self.rows = {r.key: r for r in snapshot.rows}
        shown = (self.dependencies or any(r.missing or r.breakers for r in snapshot.rows),
                 self.versions or any(r.version for r in snapshot.rows),
                 self.wide or any(len(r.count) > 5 for r in snapshot.rows))  # 5: the narrow column
        if shown != (self.dependencies, self.versions, self.wide):
            self.dependencies, self.versions, self.wide = shown
            columns = with_dependencies(COLUMNS) if self.dependencies else COLUMNS
            columns = with_wide_count(columns) if self.wide else columns
            self.table.set_columns(with_versions(columns) if self.versions else columns)
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

    def action_route(self) -> None:
        row = self._target('switch the version of')
        if row is not None:
            self.source.route(row)

    def action_logs(self) -> None:
        self.app.push_screen(LogScreen(self.source, self.selected()))

    def action_trace(self) -> None:
        self.app.push_screen(TraceScreen(self.source))
