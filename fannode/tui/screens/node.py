"""The node's dashboard main view (`fannode up` in a terminal, `fannode attach`): top's
table of services and instances (fannode.tui.screens.top), with the node timeline under
it, and the node's own keys: `e` edits node.yml, `q` asks, then stops the cluster."""
from __future__ import annotations

import collections
import contextlib
import os
import signal
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from fannode.tui.cells import timeline_cells
from fannode.tui.screens.top import TopScreen
from fannode.tui.table import Column, RowTable

if TYPE_CHECKING:
    from fannode.tui.nodefeed import NodeFeed
    from fannode.tui.source import Deliver

NODE_TCSS = Path(__file__).with_name('node.tcss')
TIMELINE_ROWS = 2000   # as many as the node keeps (fannode.node.timeline.SIZE)
TIMELINE_COLUMNS = (Column('time', 'time', 12), Column('block', 'block', 16), Column('kind', 'event', 12),
                    Column('text', 'node timeline', 100))


@contextlib.contextmanager
def editor_signals() -> Iterator[None]:
    """While the editor runs the terminal is in normal mode and the editor shares our process
    group: its user's Ctrl-C (SIGINT) or Ctrl-\\ (SIGQUIT) reaches us too, and must not stop
    (or core-dump) the node. A Python no-op, not SIG_IGN: exec would hand SIG_IGN to the editor."""
    wanted = (signal.SIGINT, signal.SIGQUIT)
    previous = {signum: signal.signal(signum, lambda *_: None) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class TimelinePane(RowTable):
    """The node's events, newest last; follows the newest unless the cursor was moved up."""

    def __init__(self, id: str | None = None):
        super().__init__(TIMELINE_COLUMNS, TIMELINE_ROWS, id=id)
        self.entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=TIMELINE_ROWS)
        self.last_id = 0

    def take(self, entries: tuple[dict[str, Any], ...]) -> None:
        new = [e for e in entries if int(e.get('id', 0)) > self.last_id]  # a feed may hand some twice
        if new:
            self.last_id = int(new[-1].get('id', 0))
            self.entries.extend(new)
            self.add_rows(('e%d' % e['id'], timeline_cells(e)) for e in new)


class NodeScreen(TopScreen):
    BINDINGS = [
        *TopScreen.BINDINGS,
        Binding('e', 'edit', 'edit node.yml'),
        Binding('tab', 'switch_pane', 'table/timeline', show=False),
    ]

    def __init__(self, feed: NodeFeed, deliver: Deliver, clock: Callable[[], float] | None = None,
                 title: str = 'fannode up'):
        super().__init__(feed, deliver, *(() if clock is None else (clock,)))
        self.feed = feed
        self.title_text = title

    def compose(self) -> ComposeResult:
        yield Static('%s: starting…' % self.title_text, id='summary')
        yield RowTable(self.table_columns(), id='table')
        yield TimelinePane(id='timeline')
        yield Static('', id='status')
        yield Footer()

    def table_columns(self) -> tuple[Column, ...]:
        from fannode.tui.screens.top import COLUMNS
        return COLUMNS

    @property
    def timeline(self) -> TimelinePane:
        return self.query_one('#timeline', TimelinePane)

    def take_timeline(self, entries: tuple[dict[str, Any], ...]) -> None:
        self.timeline.take(entries)

    def _summary(self) -> None:
        s = self.snapshot
        if s is None:
            return
        node = 'node %s' % s.node if s.node else 'the node does not answer'
        text = Text.assemble((self.title_text, 'bold'), '  ', os.path.basename(self.feed.node_file), '  ',
                             (node, '' if s.node else 'bold red'), '  ', s.registry,
                             '  %d service%s, %d instance%s' % (s.services, '' if s.services == 1 else 's',
                                                                s.instances, '' if s.instances == 1 else 's'))
        self._line('#summary', text)

    def action_switch_pane(self) -> None:
        (self.timeline if self.table.has_focus else self.table).focus()

    def action_edit(self) -> None:
        """node.yml in $EDITOR, the dashboard suspended meanwhile; the node applies what
        is saved as it applies any edit, and says so in the timeline."""
        editor = os.environ.get('VISUAL') or os.environ.get('EDITOR') or 'vi'
        try:
            argv = shlex.split(editor) + [self.feed.node_file]
        except ValueError as e:
            self.set_status('$EDITOR cannot be read: %s' % e, ok=False)
            return
        try:
            with self.app.suspend(), editor_signals():
                code = subprocess.call(argv)
        except OSError as e:  # no such editor
            self.set_status('cannot run %s: %s' % (argv[0], e.strerror or e), ok=False)
            return
        except Exception as e:  # noqa: BLE001 - e.g. no terminal to suspend to (a test's headless app)
            self.set_status('cannot open an editor here: %s' % e, ok=False)
            return
        self.set_status('%s exited with %d; the node applies what was saved (see the timeline)'
                        % (argv[0], code) if code else 'the node applies what was saved (see the timeline)')
