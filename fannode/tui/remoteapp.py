"""`fannode attach`: the node's dashboard (fannode.tui.dashboard) against a node running
in the background. Leaving it leaves the node running: `q` (and Ctrl-C) detach; `S`
asks, then stops the node as `fannode down` does (fannode.tui.remote.RemoteFeed)."""
from __future__ import annotations

from textual.binding import Binding

from fannode.tui.dashboard import NODE_HELP, DashboardApp
from fannode.tui.nodefeed import NodeStopped
from fannode.tui.screens.help import HelpScreen
from fannode.tui.screens.quit import QuitScreen

_DASHBOARD_QUIT = '  q or Ctrl-C     stop the cluster (asks first); ?  this help'
ATTACH_KEYS = ('  q or Ctrl-C     detach: the node keeps running; fannode attach comes back\n'
               '  S               stop the node and every process (asks first); ?  this help')
ATTACH_HELP = (NODE_HELP.replace(_DASHBOARD_QUIT, ATTACH_KEYS) if _DASHBOARD_QUIT in NODE_HELP
               else NODE_HELP + '\n\n' + ATTACH_KEYS)


class AttachApp(DashboardApp):
    TITLE = 'fannode attach'
    BINDINGS = [
        Binding('question_mark', 'help', 'help', key_display='?'),
        Binding('q', 'detach', 'detach'),
        Binding('ctrl+c', 'detach', 'detach', show=False, priority=True),
        Binding('S', 'ask_stop', 'stop node'),
    ]

    gone = ''  # why the node went away while attached ('' when we detached)

    def on_top_app_update(self, message: DashboardApp.Update) -> None:
        if isinstance(message.payload, NodeStopped):
            self.gone = message.payload.why or 'stopped'
        super().on_top_app_update(message)

    def action_ask_quit(self) -> None:  # DashboardApp's quit (the log and trace views' `q`): detach
        self.action_detach()

    def action_detach(self) -> None:
        self.exit()  # exit code 0; the node runs on

    def action_ask_stop(self) -> None:
        if self.stopping or isinstance(self.screen, QuitScreen):
            return
        self.push_screen(QuitScreen('Stop the node?'), self._answered)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(ATTACH_HELP))
