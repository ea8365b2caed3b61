"""`q` (or Ctrl-C) in the node's dashboard: stop the cluster? y stops it, anything else not."""
from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.screen import ModalScreen
from textual.widgets import Static


class QuitScreen(ModalScreen[bool]):
    CSS_PATH = Path(__file__).with_name('quit.tcss')

    def __init__(self, question: str = 'Stop the cluster?'):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        yield Static('[b]%s[/b]\n\nEvery process stops gracefully, the node with them.\n\n'
                     '[b]y[/b] (or Enter) stop    any other key: go on running' % self.question, id='quit')

    def on_key(self, event: events.Key) -> None:
        event.stop()
        self.dismiss(event.key in ('y', 'Y', 'enter'))
