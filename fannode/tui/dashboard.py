"""The node's dashboard: `fannode up` in a terminal (the node in the same process,
fannode.tui.nodeapp) and `fannode attach` (a running node). It is `fannode top`'s app
(fannode.tui.app) with the node's main view (fannode.tui.screens.node): the same table,
log pane and trace view, plus the node timeline, `e` to edit node.yml, and `q` or Ctrl-C
asking before it stops the cluster. Everything comes from a NodeFeed (fannode.tui.nodefeed)."""
from __future__ import annotations

import time
from typing import Callable

from textual.binding import Binding
from textual.screen import Screen

from fannode.tui.app import TopApp
from fannode.tui.nodefeed import NodeFeed, NodeStopped, TimelineBatch
from fannode.tui.rows import LogBatch
from fannode.tui.screens.help import HelpScreen
from fannode.tui.screens.node import NODE_TCSS, NodeScreen
from fannode.tui.screens.quit import QuitScreen
from fannode.tui.screens.top import TOP_TCSS


class DashboardApp(TopApp):
    CSS_PATH = [p for p in TopApp.CSS_PATH if p != TOP_TCSS] + [NODE_TCSS]
    TITLE = 'fannode up'
    BINDINGS = [
        Binding('question_mark', 'help', 'help', key_display='?'),
        Binding('q', 'ask_quit', 'stop & quit'),
        Binding('ctrl+c', 'ask_quit', 'stop & quit', show=False, priority=True),
    ]

    def __init__(self, feed: NodeFeed, clock: Callable[[], float] = time.time, title: str = 'fannode up'):
        super().__init__(feed, clock)
        self.feed = feed
        self.node_screen = NodeScreen(feed, self.deliver, clock, title)
        self.main = self.node_screen
        self.stopping = False
        self.code = 0

    def get_default_screen(self) -> Screen:
        return self.main

    def on_top_app_update(self, message: TopApp.Update) -> None:
        payload = message.payload
        if isinstance(payload, TimelineBatch):
            message.prevent_default()
            self.node_screen.take_timeline(payload.entries)
        elif isinstance(payload, LogBatch):  # taken (the log pane, if open, takes it next): the feed may send more
            taken = getattr(self.feed, 'logs_taken', None)
            if taken is not None:
                taken()
        elif isinstance(payload, NodeStopped):
            message.prevent_default()
            self.code = payload.code
            self.exit(return_code=payload.code)

    async def action_quit(self) -> None:  # the log and trace views' `q`, too
        self.action_ask_quit()

    def action_ask_quit(self) -> None:
        if self.stopping:
            return
        if isinstance(self.screen, QuitScreen):
            return
        self.push_screen(QuitScreen(), self._answered)

    def _answered(self, stop: bool | None) -> None:
        if stop:
            self.stopping = True
            self.node_screen.set_status('stopping the cluster: every process finishes its work…')
            self.feed.stop_node()  # NodeStopped comes when it has; then the app exits

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(NODE_HELP))


NODE_HELP = """\
[b]fannode up[/b]: the node's dashboard; the node runs every process of node.yml

[b]Main view[/b]
  ↑ ↓ PgUp PgDn   select a row          Tab   table / node timeline
  + (or =) / -    one process more / fewer in the selected row's node block
  r               restart the selected instance (the node starts a new one)
  R               restart every process of the selected service or block
  l               logs of the selected row, live from the node's output
  t               trace view: type a trace id
  e               edit node.yml in $EDITOR; the node applies what is saved
                  (the timeline says applied or refused)
  v               switch the selected service's version
  q or Ctrl-C     stop the cluster (asks first); ?  this help

[b]Log pane[/b]
  1 2 3 4 5       level: DEBUG INFO WARNING ERROR CRITICAL and above
  /               search in messages, loggers and trace ids (Enter applies)
  ↑ (off the end) pause following; End follows again
  Enter or click  the selected line's trace          Esc   back

[b]Trace view[/b]
  Enter           look up the trace id typed         Esc   back

The node's timeline: started, exited (reason and code), restarted, backing off,
failed, liveness and limits, edits applied or refused, rollouts, reloads.

Press any key to close."""
